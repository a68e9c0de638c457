// The bus: fire-and-forget pub/sub between roles, one channel per event. At-most-once; durable state lives in the store.

/** Removes one subscription. */
export type Unsubscribe = () => Promise<void>;

/** A publish/subscribe bus (in-process or Redis). */
export interface Bus {
  /** `memory` (one process) or `redis` (across processes). */
  readonly kind: 'memory' | 'redis';
  /** Publishes `message` on `channel`; rejects with BusUnavailableError while the bus is down. */
  publish(channel: string, message: string): Promise<void>;
  /** Calls `handler` for every message on `channel` (this process's own publishes included) until unsubscribed. */
  subscribe(channel: string, handler: (message: string) => void): Promise<Unsubscribe>;
  /** True while publishing is expected to work. */
  isUp(): boolean;
  /** Calls `listener` whenever the bus goes down or comes back; returns a function that stops the calls. */
  onStateChange(listener: (up: boolean) => void): () => void;
  /** Connects (Redis) or does nothing (memory). */
  start(): Promise<void>;
  /** Disconnects; later publishes reject. */
  stop(): Promise<void>;
}

/** The bus cannot take the message right now (Redis down or stopped). */
export class BusUnavailableError extends Error {
  override name = 'BusUnavailableError';
  /** Machine-readable code shown to clients. */
  readonly code = 'bus_unavailable';
}

/** A small listener set for `onStateChange`. */
export function createStateListeners(): { add(l: (up: boolean) => void): () => void; emit(up: boolean): void } {
  const listeners = new Set<(up: boolean) => void>();
  return {
    add(l) {
      listeners.add(l);
      return () => void listeners.delete(l);
    },
    emit(up) {
      for (const l of [...listeners]) l(up);
    },
  };
}
