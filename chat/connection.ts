// One viewer WebSocket connection as the gateway keeps it: identity, join state, frame budgets, and the delivery
// that closes a client which cannot keep up.
import { WebSocket } from 'ws';
import type { ViewerIdentity } from './viewer-tokens.ts';
import { encode, type ErrorCode } from './protocol.ts';
import type { Room } from './room.ts';
import type { RoomsMember } from './rooms.ts';

/**
 * Frames one connection may send: burst and per second. A frame over this budget is refused (`rate_limited`) and not
 * acted on; refused frames spend a second budget of the same size, and a client that exhausts that one too is closed (4429).
 */
const FRAME_BURST = 60;
const FRAME_RATE = 20;

/** A token bucket of frames for one connection. */
export class FrameBudget {
  private tokens = FRAME_BURST;
  private at = Date.now();

  /** Takes one frame; false when the budget is spent. */
  take(now: number): boolean {
    this.tokens = Math.min(FRAME_BURST, this.tokens + ((now - this.at) * FRAME_RATE) / 1000);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until the next frame is allowed. */
  retryAfterMs(): number {
    return Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / FRAME_RATE));
  }
}

/** One WebSocket connection. */
export class Conn implements RoomsMember {
  /** The token's identity; undefined for a read-only watcher (hello without a token). */
  viewer?: ViewerIdentity;
  room?: Room<Conn>;
  /** Hello received (joining or joined). */
  greeted = false;
  joining = false;
  alive = true;
  closed = false;
  readonly frames = new FrameBudget();
  readonly refusals = new FrameBudget();
  /**
   * The client's lastSeq when it was ahead of what the room had flushed at join (e.g. the seq of an ack whose batch
   * was still pending): comments up to it are left out of this client's batches until the room has flushed past it.
   */
  skipUpTo?: number;
  helloTimer?: ReturnType<typeof setTimeout>;
  /** Messages of one connection are handled one after the other, in order. */
  queue: Promise<void> = Promise.resolve();

  constructor(
    readonly ws: WebSocket,
    readonly ip: string,
    readonly eventId: string,
    private readonly maxBuffered: number,
    private readonly onSlow: (c: Conn) => void,
  ) {}

  /** Sends a pre-serialized frame, or hands the connection to `onSlow` when too much is queued already. */
  deliver(frame: Buffer): void {
    if (this.closed) return;
    if (this.ws.bufferedAmount > this.maxBuffered) {
      this.onSlow(this);
      return;
    }
    this.ws.send(frame, { binary: false });
  }

  /** Sends one message while the socket is open. */
  send(m: Record<string, unknown> & { type: string }): void {
    if (!this.closed && this.ws.readyState === WebSocket.OPEN) this.ws.send(encode(m));
  }

  /** Sends an `error` message. */
  error(code: ErrorCode, message: string, extra: { ref?: string; retryAfterMs?: number } = {}): void {
    this.send({ type: 'error', code, message, ...extra });
  }

  /** Starts the closing handshake (once). */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.close(code, reason);
    // A peer that never completes the closing handshake is cut off.
    setTimeout(() => this.ws.terminate(), 2_000).unref();
  }
}
