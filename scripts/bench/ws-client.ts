// Benchmark client process for bench:ws (forked with IPC): either many viewers that record comment delivery,
// or the loader that posts comments and reactions at fixed rates. Speaks onair protocol v1 or Socket.IO.
import { WebSocket } from 'ws';
import { io, type Socket } from 'socket.io-client';
import { ViewerTokens } from '../../control/viewers.ts';

/** Arguments passed as one JSON argv entry. */
export interface ClientArgs {
  role: 'viewers' | 'loader';
  target: 'onair' | 'socketio';
  /** onair: ws://…/ws?event=…; socketio: http://host:port */
  url: string;
  count: number;
  /** onair: token secret shared with the server (the bench signs tokens itself instead of calling the API 10k times). */
  secret?: string;
  commentsPerSec?: number;
  reactionsPerSec?: number;
  durationSec?: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as ClientArgs;
const send = (m: unknown) => process.send?.(m);
const tokens = args.secret ? new ViewerTokens(Buffer.from(args.secret, 'utf8'), 86_400) : undefined;

/** Per comment number: how many viewers of this process got it, and the latest arrival latency. */
const got = new Map<number, { count: number; maxLat: number }>();
let closedEarly = 0;
let lastFrame: { text: string; parsed: { type: string; comments?: { text: string }[] } } = { text: '', parsed: { type: '' } };
/** Error messages the server sent (loader: refused posts). */
let errors = 0;

function record(text: string, now: number): void {
  const m = /^bench (\d+) (\d+)$/.exec(text);
  if (!m) return;
  const n = Number(m[1]);
  const lat = now - Number(m[2]);
  const g = got.get(n);
  if (g) {
    g.count++;
    if (lat > g.maxLat) g.maxLat = lat;
  } else got.set(n, { count: 1, maxLat: lat });
}

interface Conn {
  post(text: string): void;
  react(): void;
}

function openOnair(i: number, onComment?: (text: string, now: number) => void): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(args.url, { perMessageDeflate: false });
    const token = tokens!.issue({ displayName: `bench ${process.pid} ${i}`.slice(0, 24) }).token;
    let joined = false;
    ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', v: 1, token })));
    ws.on('message', (data) => {
      const text = data.toString();
      if (!joined) {
        if (text.includes('"type":"welcome"')) {
          joined = true;
          resolve({ post: (t) => ws.send(JSON.stringify({ type: 'comment', text: t })), react: () => ws.send('{"type":"react","reaction":"heart"}') });
        } else if (text.includes('"type":"error"')) reject(new Error(text));
        return;
      }
      if (text.startsWith('{"type":"error"')) errors++;
      if (!onComment || !text.includes('"comments"')) return;
      const now = Date.now();
      // Every viewer of this process receives the same frame: parse it once.
      if (text !== lastFrame.text) lastFrame = { text, parsed: JSON.parse(text) as { type: string; comments?: { text: string }[] } };
      const m = lastFrame.parsed;
      if (m.type === 'batch' && m.comments) for (const c of m.comments) onComment(c.text, now);
    });
    ws.on('error', (err) => {
      if (!joined) reject(err);
    });
    ws.on('close', () => {
      if (joined) closedEarly++;
    });
  });
}

function openSocketIo(onComment?: (text: string, now: number) => void): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const s: Socket = io(args.url, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 60_000 });
    s.on('connect', () => resolve({ post: (t) => s.emit('comment', t), react: () => s.emit('react', 'heart') }));
    s.on('connect_error', reject);
    s.on('disconnect', () => closedEarly++);
    if (onComment) s.on('comment', (text: string) => onComment(text, Date.now()));
  });
}

async function openMany(n: number, viewer: boolean): Promise<Conn[]> {
  const out: Conn[] = [];
  let failed = 0;
  const onComment = viewer ? record : undefined;
  for (let i = 0; i < n; i += 100) {
    const batch = Array.from({ length: Math.min(100, n - i) }, (_, k) => (args.target === 'onair' ? openOnair(i + k, onComment) : openSocketIo(onComment)));
    for (const r of await Promise.allSettled(batch)) {
      if (r.status === 'fulfilled') out.push(r.value);
      else failed++;
    }
  }
  if (failed) send({ warn: `${failed} connections failed` });
  return out;
}

async function runLoader(conns: Conn[]): Promise<void> {
  const duration = (args.durationSec ?? 60) * 1000;
  const cps = args.commentsPerSec ?? 100;
  const rps = args.reactionsPerSec ?? 1000;
  const start = Date.now();
  let n = 0;
  let reactions = 0;
  const tick = 10;
  await new Promise<void>((resolve) => {
    const t = setInterval(() => {
      const elapsed = Date.now() - start;
      if (elapsed >= duration) {
        clearInterval(t);
        resolve();
        return;
      }
      // Catch up to the schedule (timers drift under load).
      while (n < (elapsed * cps) / 1000) {
        conns[n % conns.length]!.post(`bench ${n} ${Date.now()}`);
        n++;
      }
      while (reactions < (elapsed * rps) / 1000) {
        conns[reactions % conns.length]!.react();
        reactions++;
      }
    }, tick);
  });
  send({ loaded: { comments: n, reactions, errors, closedEarly } });
}

const conns = await openMany(args.count, args.role === 'viewers');
send({ ready: conns.length });
process.on('message', (msg: { cmd: string }) => {
  if (msg.cmd === 'go' && args.role === 'loader') void runLoader(conns);
  if (msg.cmd === 'report') send({ report: { got: [...got.entries()], closedEarly } });
  if (msg.cmd === 'exit') process.exit(0);
});
