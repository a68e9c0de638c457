// Viewer counts over time per event (the last hour, in memory), sampled by the control plane while an event is live.

/** One viewer-count sample. */
export interface ViewerSample {
  /** ms since epoch. */
  at: number;
  viewers: number;
}

/** How long samples are kept. */
export const VIEWER_HISTORY_MS = 3600_000;

/** Per-event viewer-count history. */
export class ViewerHistory {
  readonly #samples = new Map<string, ViewerSample[]>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Records the current count of an event. */
  record(eventId: string, viewers: number): void {
    const at = this.now();
    const list = this.#samples.get(eventId) ?? [];
    list.push({ at, viewers });
    let drop = 0;
    while (drop < list.length && list[drop]!.at < at - VIEWER_HISTORY_MS) drop++;
    if (drop) list.splice(0, drop);
    this.#samples.set(eventId, list);
  }

  /** Samples of the last hour (or since `sinceMs`), oldest first. */
  history(eventId: string, sinceMs = 0): ViewerSample[] {
    const cutoff = Math.max(sinceMs, this.now() - VIEWER_HISTORY_MS);
    return (this.#samples.get(eventId) ?? []).filter((s) => s.at > cutoff);
  }

  /** Drops events whose newest sample is older than the retention. */
  prune(): void {
    const cutoff = this.now() - VIEWER_HISTORY_MS;
    for (const [id, list] of this.#samples) if ((list.at(-1)?.at ?? 0) < cutoff) this.#samples.delete(id);
  }
}
