// One publisher per event, whichever protocol it comes by (RTMP, WHIP, and later SRT): the one place that
// claims an event for a publisher, frees it, and lets a new publisher take over from one that went silent.
// createIngests owns one registry per node and hands each ingest the narrow PublisherSlots view of it.

/** A new publisher takes over from the current one once that one has sent nothing for this long. */
export const STALE_PUBLISHER_MS = 3_000;
/** How often a waiting claim checks whether the current publisher is alive or stalled. */
const CLAIM_POLL_MS = 50;

/** A publisher as the registry sees it. */
export interface Publisher {
  /** The ingest protocol, e.g. `rtmp` or `whip`. */
  readonly protocol: string;
  /** When it last sent media, on the registry's clock; +Infinity while it cannot be taken over (e.g. still connecting). */
  lastActiveAt(): number;
  /** Ends this publisher: a new one takes over its event after it was silent for `silentMs`. Its claim is already gone. */
  evict(silentMs: number): void;
}

/** A publisher's hold on its event. */
export interface PublisherClaim {
  /** True while this claim holds the event (false once released or taken over). */
  readonly held: boolean;
  /** Frees the event if this claim still holds it; a claim that was taken over frees nothing. */
  release(): void;
}

/** The outcome of a claim: the event is this publisher's, or another live publisher keeps it, or the claimant gave up. */
export type ClaimResult = { ok: true; claim: PublisherClaim } | { ok: false; reason: 'already_live' | 'gone' };

/** What an ingest needs from the registry. */
export interface PublisherSlots {
  /**
   * Claims `eventId` for `publisher`. Free: claimed now. Held by a publisher that sends anything after this call:
   * already_live. Held by one silent for STALE_PUBLISHER_MS: that one is evicted and the claim succeeds. Until one
   * of those is known this waits, checking `stillWanted()` (false: gone) every poll.
   */
  claim(eventId: string, publisher: Publisher, stillWanted: () => boolean): Promise<ClaimResult>;
  /** The protocol of the publisher holding `eventId`; undefined when none. */
  holderProtocol(eventId: string): string | undefined;
}

/** Registry options; the clock and the wait are injectable for tests. */
export interface PublisherRegistryOptions {
  staleMs?: number;
  pollMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** Creates a node's publisher registry (no timers until a claim has to wait). */
export function createPublisherRegistry(opts: PublisherRegistryOptions = {}): PublisherSlots {
  const staleMs = opts.staleMs ?? STALE_PUBLISHER_MS;
  const pollMs = opts.pollMs ?? CLAIM_POLL_MS;
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  /** The holder of each event; a claim holds while its own entry is the one stored. */
  const holders = new Map<string, { publisher: Publisher }>();

  function take(eventId: string, publisher: Publisher): ClaimResult {
    const entry = { publisher };
    holders.set(eventId, entry);
    return {
      ok: true,
      claim: {
        get held() {
          return holders.get(eventId) === entry;
        },
        release() {
          if (holders.get(eventId) === entry) holders.delete(eventId);
        },
      },
    };
  }

  return {
    async claim(eventId, publisher, stillWanted) {
      const arrivedAt = now();
      for (;;) {
        if (!stillWanted()) return { ok: false, reason: 'gone' };
        const current = holders.get(eventId);
        if (!current) return take(eventId, publisher);
        const lastActiveAt = current.publisher.lastActiveAt();
        if (lastActiveAt > arrivedAt) return { ok: false, reason: 'already_live' };
        const silentMs = now() - lastActiveAt;
        if (silentMs >= staleMs) {
          holders.delete(eventId);
          current.publisher.evict(silentMs);
          return take(eventId, publisher);
        }
        await sleep(pollMs);
      }
    },
    holderProtocol: (eventId) => holders.get(eventId)?.publisher.protocol,
  };
}
