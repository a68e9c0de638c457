// The recording's write queue: puts objects to storage in the background, a few at a time, retrying each a few
// times with backoff. It is bounded by bytes and objects: a store too slow to keep up, or one that keeps failing,
// fails the queue (with the reason) instead of holding memory or ever making the caller wait. Enqueueing never
// blocks and never throws.
import type { Storage } from '../../lib/storage/storage.ts';

/** Options of a WriteQueue. */
export interface WriteQueueOptions {
  /** Most bytes queued or in flight; enqueueing past it fails the queue. */
  maxBytes: number;
  /** Most objects queued or in flight. */
  maxItems: number;
  /** Puts in flight at once. */
  concurrency: number;
  /** Attempts per object before the queue fails. */
  attempts: number;
  /** Delay before the second attempt; doubled for each further one. */
  retryBaseMs: number;
  /** An attempt that takes longer counts as failed (it may still complete in the background). */
  attemptTimeoutMs: number;
}

export const DEFAULT_WRITE_QUEUE: WriteQueueOptions = {
  maxBytes: 256 * 1024 * 1024,
  maxItems: 10_000,
  concurrency: 4,
  attempts: 4,
  retryBaseMs: 500,
  attemptTimeoutMs: 30_000,
};

interface Item {
  key: string;
  body: Buffer;
  done?: () => void;
}

/** Writes objects in the background; fails for good on the first object it cannot store. */
export class WriteQueue {
  readonly #storage: Storage;
  readonly #opts: WriteQueueOptions;
  readonly #onFail: (reason: string) => void;
  #items: Item[] = [];
  #inFlight = 0;
  #bytes = 0;
  #paused: boolean;
  #failed: string | undefined;
  #idle: (() => void)[] = [];
  #timers = new Map<NodeJS.Timeout, Item>();
  /** Bytes stored so far. */
  storedBytes = 0;

  constructor(storage: Storage, opts: WriteQueueOptions, onFail: (reason: string) => void, paused = false) {
    this.#storage = storage;
    this.#opts = opts;
    this.#onFail = onFail;
    this.#paused = paused;
  }

  /** Why the queue failed; undefined while it works. */
  get failed(): string | undefined {
    return this.#failed;
  }

  /** Bytes queued or in flight. */
  get pendingBytes(): number {
    return this.#bytes;
  }

  /** Objects queued or in flight. */
  get pendingItems(): number {
    return this.#items.length + this.#inFlight;
  }

  /** Queues a put; `done` runs once it is stored. False (nothing queued) once failed, or when this overflows the bounds (which fails the queue). */
  enqueue(key: string, body: Buffer, done?: () => void): boolean {
    if (this.#failed !== undefined) return false;
    if (this.#bytes + body.length > this.#opts.maxBytes || this.pendingItems + 1 > this.#opts.maxItems) {
      this.fail(`storage too slow: ${this.pendingItems} writes (${this.#bytes} bytes) still pending`);
      return false;
    }
    this.#items.push(done ? { key, body, done } : { key, body });
    this.#bytes += body.length;
    this.#pump();
    return true;
  }

  /** Starts writing what was queued while paused. */
  resume(): void {
    this.#paused = false;
    this.#pump();
  }

  /** Fails the queue: drops what is queued, refuses more, reports `reason` once. */
  fail(reason: string): void {
    if (this.#failed !== undefined) return;
    this.#failed = reason;
    for (const i of this.#items) this.#bytes -= i.body.length;
    this.#items = [];
    for (const [t, item] of this.#timers) {
      clearTimeout(t);
      this.#inFlight--;
      this.#bytes -= item.body.length;
    }
    this.#timers.clear();
    this.#onFail(reason);
    this.#checkIdle();
  }

  /** Resolves once nothing is queued or in flight (or the queue failed). */
  idle(): Promise<void> {
    if (this.pendingItems === 0 || (this.#failed !== undefined && this.#inFlight === 0)) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #checkIdle(): void {
    if (this.#inFlight > 0 || (this.#items.length > 0 && this.#failed === undefined)) return;
    for (const r of this.#idle.splice(0)) r();
  }

  #pump(): void {
    while (!this.#paused && this.#failed === undefined && this.#inFlight < this.#opts.concurrency && this.#items.length > 0) {
      const item = this.#items.shift()!;
      this.#inFlight++;
      void this.#write(item, 1);
    }
  }

  async #write(item: Item, attempt: number): Promise<void> {
    let error: string | undefined;
    try {
      await this.#attempt(item);
    } catch (err) {
      error = (err as Error).message || String(err);
    }
    if (this.#failed !== undefined) return this.#settle(item);
    if (error === undefined) {
      this.storedBytes += item.body.length;
      this.#settle(item);
      item.done?.();
      return;
    }
    if (attempt >= this.#opts.attempts) {
      this.#settle(item);
      this.fail(`storage write of ${item.key} failed ${attempt} times: ${error}`);
      return;
    }
    const t = setTimeout(
      () => {
        this.#timers.delete(t);
        void this.#write(item, attempt + 1);
      },
      this.#opts.retryBaseMs * 2 ** (attempt - 1),
    );
    this.#timers.set(t, item);
  }

  #attempt(item: Item): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no answer within ${this.#opts.attemptTimeoutMs} ms`)), this.#opts.attemptTimeoutMs);
      this.#storage.put(item.key, item.body).then(
        () => {
          clearTimeout(t);
          resolve();
        },
        (err: unknown) => {
          clearTimeout(t);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  #settle(item: Item): void {
    this.#inFlight--;
    this.#bytes -= item.body.length;
    this.#pump();
    this.#checkIdle();
  }
}
