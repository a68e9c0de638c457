// Browser client of the chat WebSocket (protocol v1, docs/protocol.md): joins, resumes from the last seq after a
// reconnect, dedupes by seq, and reports state changes to the UI.

/** A comment as the server sends it. */
export interface ChatComment {
  id: string;
  seq: number;
  viewerId: string;
  name: string;
  role: string;
  text: string;
  at: number;
}

/** A viewer token from `POST /api/v1/viewers`, kept in localStorage. */
export interface StoredViewer {
  token: string;
  viewer: { id: string; name: string; role: string };
  expiresAt: number;
}

/** What the client reports to the page. */
export interface ChatHandlers {
  onStatus(status: ChatStatus, detail?: string): void;
  onComments(comments: ChatComment[]): void;
  onRemoved(ids: string[]): void;
  onReactions(counts: Record<string, number>): void;
  onLikes(likes: number, dislikes: number, mine?: 'like' | 'dislike' | 'none'): void;
  onViewers(n: number): void;
  onSettings(s: { chatEnabled: boolean; slowModeSec: number }): void;
  onError(code: string, message: string, retryAfterMs?: number): void;
  /** The token was refused (expired or forged): the page should ask for a name again. */
  onTokenRejected(): void;
  /** Every parsed server message, before the client handles it (overlay signals, for the viewer page). */
  onMessage?(m: Record<string, unknown>): void;
}

/** Connection state shown by the panel. */
export type ChatStatus = 'connecting' | 'live' | 'unavailable' | 'reconnecting' | 'banned';

const STORAGE_KEY = 'onair.viewer';

/** The stored viewer token, if still valid for a minute. */
export function loadViewer(): StoredViewer | undefined {
  try {
    const v = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null') as StoredViewer | null;
    if (v && typeof v.token === 'string' && v.expiresAt > Date.now() + 60_000) return v;
  } catch {
    /* ignored */
  }
  return undefined;
}

/** Forgets the stored token. */
export function forgetViewer(): void {
  localStorage.removeItem(STORAGE_KEY);
}

/** Asks the server for a token for `displayName`; throws Error with the server's message when refused. */
export async function requestViewer(displayName: string): Promise<StoredViewer> {
  const res = await fetch('/api/v1/viewers', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ displayName }),
  });
  const body = (await res.json().catch(() => null)) as (StoredViewer & { error?: { message?: string } }) | null;
  if (!res.ok || !body?.token) throw new Error(body?.error?.message ?? `HTTP ${res.status}`);
  const v: StoredViewer = { token: body.token, viewer: body.viewer, expiresAt: body.expiresAt };
  localStorage.setItem(STORAGE_KEY, JSON.stringify(v));
  return v;
}

/**
 * One chat connection for one event, reconnecting by itself until closed. Without a token it watches (receives
 * everything, posts nothing); `lastSeq` continues after comments another client already showed.
 */
export class ChatClient {
  private ws?: WebSocket;
  private retry = 0;
  private timer?: ReturnType<typeof setTimeout>;
  private closed = false;
  private refs = 0;

  constructor(
    private readonly eventId: string,
    private readonly token: string | undefined,
    private readonly h: ChatHandlers,
    private lastSeq?: number,
  ) {}

  /** The highest comment seq shown so far. */
  get seq(): number | undefined {
    return this.lastSeq;
  }

  /** Opens the connection. */
  open(): void {
    this.closed = false;
    this.connect();
  }

  /** Closes for good. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.ws?.close(1000);
  }

  /** Posts a comment; the answer comes as onError or as the comment itself. */
  comment(text: string): void {
    this.send({ type: 'comment', text, ref: `c${++this.refs}` });
  }

  /** Sends one reaction tap. */
  react(reaction: string): void {
    this.send({ type: 'react', reaction });
  }

  /** Sets this viewer's like/dislike. */
  like(value: 'like' | 'dislike' | 'none'): void {
    this.send({ type: 'like', value, ref: `l${++this.refs}` });
  }

  private send(m: object): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
    else this.h.onError('chat_unavailable', 'not connected; retrying…');
  }

  private connect(): void {
    const url = new URL(`/ws?event=${encodeURIComponent(this.eventId)}`, window.location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    this.h.onStatus(this.retry === 0 ? 'connecting' : 'reconnecting');
    const ws = new WebSocket(url.href);
    this.ws = ws;
    ws.onopen = () =>
      ws.send(
        JSON.stringify({
          type: 'hello',
          v: 1,
          ...(this.token !== undefined ? { token: this.token } : {}),
          ...(this.lastSeq !== undefined ? { lastSeq: this.lastSeq } : {}),
        }),
      );
    ws.onmessage = (e) => this.onMessage(typeof e.data === 'string' ? e.data : '');
    ws.onclose = (e) => {
      if (this.ws !== ws || this.closed) return;
      if (e.code === 4403) return this.h.onStatus('banned', 'You are banned from this chat.');
      if (e.code === 4401) return this.h.onTokenRejected();
      this.h.onStatus('reconnecting', 'Chat disconnected — reconnecting…');
      const delay = Math.min(10_000, 500 * 2 ** this.retry++) * (0.5 + Math.random() / 2);
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  private accept(list: unknown): void {
    if (!Array.isArray(list)) return;
    const fresh = (list as ChatComment[]).filter((c) => this.lastSeq === undefined || c.seq > this.lastSeq);
    if (fresh.length === 0) return;
    this.lastSeq = fresh[fresh.length - 1]!.seq;
    this.h.onComments(fresh);
  }

  private onMessage(text: string): void {
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    this.h.onMessage?.(m);
    switch (m.type) {
      case 'welcome': {
        this.retry = 0;
        const likes = m.likes as { likes: number; dislikes: number; mine: 'like' | 'dislike' | 'none' };
        this.h.onLikes(likes.likes, likes.dislikes, likes.mine);
        this.h.onViewers(Number(m.viewers));
        this.h.onSettings(m.settings as { chatEnabled: boolean; slowModeSec: number });
        this.h.onStatus(m.chat === 'unavailable' ? 'unavailable' : 'live');
        break;
      }
      case 'history':
        this.accept(m.comments);
        break;
      case 'batch': {
        this.accept(m.comments);
        if (Array.isArray(m.removed)) this.h.onRemoved(m.removed as string[]);
        if (Array.isArray(m.restored)) this.h.onComments(m.restored as ChatComment[]);
        if (m.reactions) this.h.onReactions(m.reactions as Record<string, number>);
        if (m.likes) {
          const l = m.likes as { likes: number; dislikes: number };
          this.h.onLikes(l.likes, l.dislikes);
        }
        if (typeof m.viewers === 'number') this.h.onViewers(m.viewers);
        if (m.settings) this.h.onSettings(m.settings as { chatEnabled: boolean; slowModeSec: number });
        if (m.chat === 'unavailable') this.h.onStatus('unavailable', 'Chat is temporarily unavailable.');
        if (m.chat === 'ok') this.h.onStatus('live');
        break;
      }
      case 'ack':
        if (typeof m.likes === 'number') this.h.onLikes(m.likes, Number(m.dislikes), m.like as 'like' | 'dislike' | 'none');
        break;
      case 'error':
        if (m.code === 'invalid_token') return this.h.onTokenRejected();
        this.h.onError(String(m.code), String(m.message), typeof m.retryAfterMs === 'number' ? m.retryAfterMs : undefined);
        break;
    }
  }
}
