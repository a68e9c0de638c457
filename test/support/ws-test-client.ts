// Test helper: a protocol-speaking WebSocket client that records every message and close, with bounded waits.
import { WebSocket } from 'ws';
import type { CommentWire } from '../../chat/channel.ts';

/** Any server message (loosely typed for assertions). */
export type ServerMessage = { type: string; [k: string]: unknown };

/** A recording client. */
export interface TestClient {
  ws: WebSocket;
  messages: ServerMessage[];
  /** Close code and reason once closed. */
  closed?: { code: number; reason: string };
  /** Comments received so far (history and batches), in arrival order. */
  comments(): CommentWire[];
  /** Sends a JSON message (or a raw string/Buffer as is). */
  send(m: object | string | Buffer): void;
  /** Waits for a message matching `pred` that arrived after index `from` (default 0). */
  waitFor(pred: (m: ServerMessage) => boolean, what: string, timeoutMs?: number, from?: number): Promise<ServerMessage>;
  /** Waits until the connection is closed. */
  waitClosed(timeoutMs?: number): Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

/** Polls `cond` every 20 ms until true, or throws after `timeoutMs`. */
export async function until(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Opens `url` (ws://host:port/ws?event=…) with extra upgrade `headers` (e.g. X-Forwarded-For); when `hello` is given,
 * sends it (no token: a watcher) and waits for welcome and history.
 */
export async function connectClient(
  url: string,
  hello?: { token?: string; lastSeq?: number },
  headers?: Record<string, string>,
): Promise<TestClient> {
  const ws = new WebSocket(url, headers ? { headers } : undefined);
  const c: TestClient = {
    ws,
    messages: [],
    comments() {
      const out: CommentWire[] = [];
      for (const m of this.messages) {
        if ((m.type === 'history' || m.type === 'batch') && Array.isArray(m.comments)) out.push(...(m.comments as CommentWire[]));
      }
      return out;
    },
    send(m) {
      ws.send(typeof m === 'string' || Buffer.isBuffer(m) ? m : JSON.stringify(m), { binary: Buffer.isBuffer(m) });
    },
    async waitFor(pred, what, timeoutMs = 15_000, from = 0) {
      let found: ServerMessage | undefined;
      await until(
        what,
        () => {
          found = c.messages.slice(from).find(pred);
          return found !== undefined || c.closed !== undefined;
        },
        timeoutMs,
      );
      if (!found) {
        // Closed: one more look (the message may have come with the close).
        found = c.messages.slice(from).find(pred);
        if (!found)
          throw new Error(
            `connection closed (${c.closed?.code} ${c.closed?.reason}) while waiting for ${what}; got ${JSON.stringify(c.messages.slice(-3))}`,
          );
      }
      return found;
    },
    async waitClosed(timeoutMs = 15_000) {
      await until('close', () => c.closed !== undefined, timeoutMs);
      return c.closed!;
    },
    async close() {
      if (c.closed) return;
      ws.close();
      await until('close', () => c.closed !== undefined, 5_000).catch(() => ws.terminate());
    },
  };
  ws.on('message', (d) => c.messages.push(JSON.parse(d.toString()) as ServerMessage));
  ws.on('close', (code, reason) => (c.closed = { code, reason: reason.toString() }));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
  });
  if (hello) {
    c.send({
      type: 'hello',
      v: 1,
      ...(hello.token !== undefined ? { token: hello.token } : {}),
      ...(hello.lastSeq !== undefined ? { lastSeq: hello.lastSeq } : {}),
    });
    await c.waitFor((m) => m.type === 'welcome' || m.type === 'error', 'welcome');
    const err = c.messages.find((m) => m.type === 'error');
    if (err) throw new Error(`hello refused: ${JSON.stringify(err)}`);
    // The backlog (history) follows welcome before the client joins the room.
    await c.waitFor((m) => m.type === 'history', 'history');
  }
  return c;
}
