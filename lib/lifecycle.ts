// The one lifecycle contract of onair's components, and the group that starts and stops them in order.
//
// A component is built by a constructor (or a create function) that starts nothing: no timer, socket, child
// process or probe. start() brings it up; stop() undoes exactly what start() did, and is safe to call when start()
// failed half-way or never ran. The group registers each stop as soon as its start succeeds and stops in reverse,
// so a failure at any step leaves nothing running (mediamtx's Initialize/Close with a context from the parent).

/** A component with an explicit lifecycle. */
export interface Service {
  /**
   * Brings the component up; rejects when it cannot (the message says why). `signal` is aborted when the owner
   * shuts down: a component may watch it to give up a long start, and to end background work it started.
   */
  start(signal: AbortSignal): Promise<void>;
  /** Releases everything start() took. Idempotent; never rejects for a component that did not start. */
  stop(): Promise<void>;
}

/** A service built from two functions, for a piece that has no object of its own (a listening server, a pool). */
export function service(start: (signal: AbortSignal) => Promise<void>, stop: () => Promise<void>): Service {
  return { start, stop };
}

/** Called with each stop failure; the group goes on stopping the rest. */
export type StopErrorHandler = (name: string, err: unknown) => void;

/**
 * Starts services one after another and stops them in reverse. Itself a Service, so groups nest: the
 * composition root builds one group per process, roles add theirs to it.
 */
export class ServiceGroup implements Service {
  readonly #entries: { name: string; service: Service }[] = [];
  readonly #started: { name: string; service: Service }[] = [];
  readonly #controller = new AbortController();
  readonly #onStopError: StopErrorHandler;
  #state: 'idle' | 'starting' | 'started' | 'stopping' | 'stopped' = 'idle';

  constructor(onStopError: StopErrorHandler = () => {}) {
    this.#onStopError = onStopError;
  }

  /** Adds `svc` under `name` (used in error messages); services start in the order they were added. */
  add<S extends Service>(name: string, svc: S): S {
    if (this.#state !== 'idle') throw new Error(`cannot add ${name}: the group has already started`);
    this.#entries.push({ name, service: svc });
    return svc;
  }

  /** Aborted once the group stops (or its parent's signal aborts). */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /**
   * Starts every service in order. If one fails, those already started are stopped in reverse and the
   * returned promise rejects with an error naming the failed service (its cause is the original error).
   */
  async start(parent?: AbortSignal): Promise<void> {
    if (this.#state !== 'idle') throw new Error('the group has already started');
    this.#state = 'starting';
    const onAbort = () => this.#controller.abort(parent?.reason);
    if (parent?.aborted) onAbort();
    else parent?.addEventListener('abort', onAbort, { once: true });
    for (const entry of this.#entries) {
      if (this.#controller.signal.aborted) {
        await this.stop();
        throw new Error(`start aborted before ${entry.name}`);
      }
      try {
        await entry.service.start(this.#controller.signal);
      } catch (err) {
        await this.stop();
        const why = err instanceof Error ? err.message : String(err);
        throw new Error(`${entry.name}: ${why}`, { cause: err });
      }
      if (this.#state !== 'starting') {
        // stop() ran while this one was starting: it missed it, so stop it here.
        await entry.service.stop().catch((err: unknown) => this.#onStopError(entry.name, err));
        throw new Error(`start aborted during ${entry.name}`);
      }
      this.#started.push(entry);
    }
    this.#state = 'started';
  }

  /** Stops what started, last first; waits for each stop before the next. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'stopped') return;
    this.#state = 'stopping';
    this.#controller.abort(new Error('stopping'));
    for (const entry of this.#started.splice(0).reverse()) {
      try {
        await entry.service.stop();
      } catch (err) {
        this.#onStopError(entry.name, err);
      }
    }
    this.#state = 'stopped';
  }
}
