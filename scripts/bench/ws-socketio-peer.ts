// bench:ws peer: a Socket.IO server with @socket.io/redis-adapter doing plain broadcast (one emit per comment and per
// reaction to the event's room), as a Node team would build it. Usage: tsx ws-socketio-peer.ts <port> <redisUrl>
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';

const port = Number(process.argv[2]);
const redisUrl = process.argv[3] ?? 'redis://127.0.0.1:6379';
const pub = new Redis(redisUrl);
const sub = pub.duplicate();
const http = createServer();
const io = new Server(http, { adapter: createAdapter(pub, sub), transports: ['websocket'], serveClient: false, perMessageDeflate: false });
io.on('connection', (socket) => {
  void socket.join('event');
  socket.on('comment', (text: unknown) => {
    if (typeof text === 'string' && text.length <= 500) io.to('event').emit('comment', text);
  });
  socket.on('react', (name: unknown) => {
    if (typeof name === 'string') io.to('event').emit('react', name);
  });
});
http.listen(port, '127.0.0.1', () => process.send?.({ listening: port }));
const stop = () => {
  void io.close();
  pub.disconnect();
  sub.disconnect();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
