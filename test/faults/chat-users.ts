// Chat users for the fault suite: each holds a viewer WebSocket (docs/protocol.md) with a viewer token, posts a
// comment every ~500 ms, reconnects as the viewer page does (backoff from 0.5 s, resuming from the last seq), and
// records which comments the server acknowledged. readAllComments() then reads the event's comments back through
// the API, so that "acknowledged comments lost" is a count, not an impression.
import { connectClient, type TestClient } from '../support/ws-test-client.ts';

/** What one chat user did. */
export interface ChatUserStats {
  name: string;
  /** Comments sent on an open connection. */
  sent: number;
  /** Acknowledged comments: ref → stored id, seq and when the ack arrived. */
  acked: Map<string, { id: string; seq: number; at: number }>;
  /** Refusals by error code (chat_unavailable, rate_limited, …). */
  refused: Record<string, number>;
  /** Sends skipped because no connection was open. */
  skipped: number;
  reconnects: number;
  /** `chat` status changes seen in batches (ok / unavailable), with times. */
  chatStatus: [number, string][];
}

/** A running chat user. */
export interface ChatUser {
  readonly stats: ChatUserStats;
  /** True while a connection is open and joined. */
  readonly connected: boolean;
  stop(): Promise<void>;
}

/** Options of a chat user. */
export interface ChatUserOptions {
  /** Public HTTP base (the balancer or an all-in-one server): POST /api/v1/viewers and /ws live under it. */
  base: string;
  eventId: string;
  displayName: string;
  /** Between comments, ms (default 500). */
  everyMs?: number;
}

/** Gets a viewer token for `displayName` (POST /api/v1/viewers), retrying while the API is unreachable. */
async function viewerToken(base: string, displayName: string): Promise<string> {
  const res = await fetch(`${base}/api/v1/viewers`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ displayName }),
  });
  const body = (await res.json()) as { token?: string };
  if (res.status !== 201 || !body.token) throw new Error(`POST /api/v1/viewers: HTTP ${res.status} ${JSON.stringify(body)}`);
  return body.token;
}

/** Starts a chat user: gets a token, joins, and comments until stopped. */
export async function startChatUser(o: ChatUserOptions): Promise<ChatUser> {
  const token = await viewerToken(o.base, o.displayName);
  const wsUrl = `${o.base.replace(/^http/, 'ws')}/ws?event=${encodeURIComponent(o.eventId)}`;
  const stats: ChatUserStats = { name: o.displayName, sent: 0, acked: new Map(), refused: {}, skipped: 0, reconnects: 0, chatStatus: [] };
  let client: TestClient | undefined;
  let lastSeq: number | undefined;
  let stopped = false;
  let n = 0;
  let backoff = 500;
  let reconnectTimer: NodeJS.Timeout | undefined;

  const onMessage = (d: Buffer) => {
    const m = JSON.parse(d.toString()) as Record<string, unknown>;
    if (m.type === 'ack' && typeof m.ref === 'string' && typeof m.id === 'string')
      stats.acked.set(m.ref, { id: m.id, seq: Number(m.seq), at: Date.now() });
    else if (m.type === 'error' && typeof m.code === 'string') stats.refused[m.code] = (stats.refused[m.code] ?? 0) + 1;
    if ((m.type === 'history' || m.type === 'batch') && Array.isArray(m.comments)) {
      for (const c of m.comments as { seq: number }[]) lastSeq = Math.max(lastSeq ?? 0, c.seq);
    }
    if (m.type === 'batch' && typeof m.chat === 'string') stats.chatStatus.push([Date.now(), m.chat]);
  };

  const connect = async (initial = false): Promise<void> => {
    reconnectTimer = undefined;
    if (stopped) return;
    try {
      const c = await connectClient(wsUrl, { token, ...(lastSeq !== undefined ? { lastSeq } : {}) });
      if (stopped) return void (await c.close());
      for (const m of c.messages) onMessage(Buffer.from(JSON.stringify(m)));
      c.ws.on('message', onMessage);
      c.ws.on('close', () => {
        if (client === c) client = undefined;
        schedule();
      });
      client = c;
      backoff = 500;
    } catch (err) {
      if (initial) throw err;
      schedule();
    }
  };
  const schedule = () => {
    if (stopped || reconnectTimer) return;
    stats.reconnects++;
    const delay = backoff * (0.75 + Math.random() * 0.5);
    backoff = Math.min(backoff * 2, 10_000);
    reconnectTimer = setTimeout(() => void connect(), delay);
  };

  await connect(true);
  const sender = setInterval(() => {
    const c = client;
    if (!c || c.closed) {
      stats.skipped++;
      return;
    }
    n++;
    c.send({ type: 'comment', text: `${o.displayName} #${n}`, ref: `${o.displayName.replace(/[^A-Za-z0-9_-]/g, '')}-${n}` });
    stats.sent++;
  }, o.everyMs ?? 500);

  return {
    stats,
    get connected() {
      return client !== undefined && !client.closed;
    },
    async stop() {
      stopped = true;
      clearInterval(sender);
      clearTimeout(reconnectTimer);
      // Let the last acks arrive.
      await new Promise((r) => setTimeout(r, 500));
      await client?.close();
    },
  };
}

/** Every visible comment of the event through GET /api/v1/events/:id/comments, paged; returns their ids. */
export async function readAllComments(base: string, eventId: string): Promise<Set<string>> {
  const ids = new Set<string>();
  let after = 0;
  for (let page = 0; page < 1000; page++) {
    const res = await fetch(`${base}/api/v1/events/${encodeURIComponent(eventId)}/comments?after=${after}&limit=200`);
    if (!res.ok) throw new Error(`GET comments: HTTP ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { comments: { id: string; seq: number }[]; hasMore: boolean; nextAfter?: number };
    for (const c of body.comments) ids.add(c.id);
    if (!body.hasMore || body.comments.length === 0) break;
    after = body.nextAfter ?? body.comments[body.comments.length - 1]!.seq;
  }
  return ids;
}

/** Acknowledged comments (of all users) whose id is not in `stored`, acked within [fromMs, untilMs]: their refs. */
export function lostComments(users: readonly ChatUserStats[], stored: ReadonlySet<string>, fromMs = 0, untilMs = Infinity): string[] {
  const lost: string[] = [];
  for (const u of users) for (const [ref, a] of u.acked) if (a.at >= fromMs && a.at <= untilMs && !stored.has(a.id)) lost.push(ref);
  return lost;
}

/** How many comments all users had acknowledged within [fromMs, untilMs]. */
export function ackedBetween(users: readonly ChatUserStats[], fromMs: number, untilMs = Infinity): number {
  let n = 0;
  for (const u of users) for (const a of u.acked.values()) if (a.at >= fromMs && a.at <= untilMs) n++;
  return n;
}
