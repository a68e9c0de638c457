// Benchmark client process for bench:ws (forked with IPC): either many viewers that record comment delivery,
// or the loader that posts comments and reactions at fixed rates. Speaks onair protocol v1 or Socket.IO.
import { WebSocket } from 'ws';
import { io, type Socket } from 'socket.io-client';
import { ViewerTokens } from '../../chat/viewer-tokens.ts';

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
/**
 * Frames recently received by this process's viewers. The server sends one frame per flush to every viewer, so a
 * frame is decoded once (its first copy) and each further copy only counts a receiver and its arrival time: the
 * client's own cost stays a memcmp per message, so the measured latency is the server's, not this process's.
 */
interface SeenFrame {
  raw: Buffer;
  /** Comment numbers and post times in this frame. */
  comments: [n: number, postedAt: number][];
  receivers: number;
  lastArrival: number;
}
const recentFrames: SeenFrame[] = [];
const doneFrames: SeenFrame[] = [];
/** Frames are compared against this many recent ones (a lagging socket may deliver an older frame after a newer one). */
const RECENT_FRAMES = 16;
/** Error messages the server sent (loader: refused posts). */
let errors = 0;

const BENCH_TEXT = /^bench (\d+) (\d+)$/;

/** Counts one delivery of a comment (Socket.IO: one event per comment per viewer). */
function record(text: string, now: number): void {
  const m = BENCH_TEXT.exec(text);
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

function openOnair(i: number, viewer: boolean): Promise<Conn> {
  return new Promise((resolve, reject) => {
    // The server's frames are trusted here; validating UTF-8 once per viewer would cost this client process, not the server.
    const ws = new WebSocket(args.url, { perMessageDeflate: false, skipUTF8Validation: true });
    const token = tokens!.issue({ displayName: `bench ${process.pid} ${i}`.slice(0, 24) }).token;
    let joined = false;
    ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', v: 1, token })));
    ws.on('message', (data: Buffer) => {
      if (!joined) {
        const text = data.toString();
        if (text.includes('"type":"welcome"')) {
          joined = true;
          resolve({
            post: (t) => ws.send(JSON.stringify({ type: 'comment', text: t })),
            react: () => ws.send('{"type":"react","reaction":"heart"}'),
          });
        } else if (text.includes('"type":"error"')) reject(new Error(text));
        return;
      }
      if (!viewer) {
        if (data.toString('latin1', 0, 15) === '{"type":"error"') errors++;
        return;
      }
      const now = Date.now();
      let f = recentFrames.find((r) => r.raw.equals(data));
      if (f === undefined) {
        const m = JSON.parse(data.toString()) as { type: string; comments?: { text: string }[] };
        const comments = (m.type === 'batch' ? (m.comments ?? []) : []).flatMap((c): [number, number][] => {
          const b = BENCH_TEXT.exec(c.text);
          return b ? [[Number(b[1]), Number(b[2])]] : [];
        });
        f = { raw: data, comments, receivers: 0, lastArrival: now };
        recentFrames.unshift(f);
        const old = recentFrames.length > RECENT_FRAMES ? recentFrames.pop()! : undefined;
        if (old && old.comments.length > 0) doneFrames.push(old);
      }
      f.receivers++;
      f.lastArrival = now;
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
  for (let i = 0; i < n; i += 100) {
    const batch = Array.from({ length: Math.min(100, n - i) }, (_, k) =>
      args.target === 'onair' ? openOnair(i + k, viewer) : openSocketIo(viewer ? record : undefined),
    );
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
  if (msg.cmd === 'report') {
    for (const f of [...doneFrames, ...recentFrames]) {
      for (const [n, postedAt] of f.comments) {
        const g = got.get(n) ?? { count: 0, maxLat: 0 };
        g.count += f.receivers;
        g.maxLat = Math.max(g.maxLat, f.lastArrival - postedAt);
        got.set(n, g);
      }
    }
    send({ report: { got: [...got.entries()], closedEarly } });
  }
  if (msg.cmd === 'exit') process.exit(0);
});
