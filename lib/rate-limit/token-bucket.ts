// Token-bucket rate limiting: the interface and the in-process implementation (all-in-one default).

/** One bucket to draw from: `capacity` tokens, refilled continuously at `refillPerSec`. */
export interface BucketSpec {
  key: string;
  capacity: number;
  refillPerSec: number;
}

/** Outcome of {@link RateLimiter.take}. */
export interface TakeResult {
  allowed: boolean;
  /** When denied: milliseconds until the request would be allowed. */
  retryAfterMs: number;
  /** When denied: index in `specs` of the bucket that ran out first (the one making the caller wait longest). */
  blockedBy: number;
}

/** Draws tokens from several buckets at once: all or nothing. */
export interface RateLimiter {
  /** Takes `cost` tokens from every bucket in `specs`, or from none if any lacks them. Rejects if the backing store is down. */
  take(specs: readonly BucketSpec[], cost?: number): Promise<TakeResult>;
}

interface BucketState {
  tokens: number;
  at: number;
}

/** The arithmetic shared by both implementations: tokens after refilling from `at` to `now`. */
export function refill(state: BucketState | undefined, spec: BucketSpec, now: number): number {
  if (!state) return spec.capacity;
  return Math.min(spec.capacity, state.tokens + (Math.max(0, now - state.at) * spec.refillPerSec) / 1000);
}

/** Creates an in-process limiter; buckets that have refilled completely are forgotten on a periodic sweep. */
export function createMemoryRateLimiter(options: { now?: () => number; sweepEvery?: number } = {}): RateLimiter {
  const now = options.now ?? Date.now;
  const sweepEvery = options.sweepEvery ?? 10_000;
  const buckets = new Map<string, BucketState & { full: number }>();
  let calls = 0;
  const sweep = (t: number) => {
    for (const [k, b] of buckets) if (b.full <= t) buckets.delete(k);
  };
  return {
    async take(specs, cost = 1) {
      const t = now();
      if (++calls % sweepEvery === 0) sweep(t);
      const levels = specs.map((s) => refill(buckets.get(s.key), s, t));
      let wait = 0;
      let blockedBy = -1;
      specs.forEach((s, i) => {
        const lack = cost - levels[i]!;
        if (lack <= 0) return;
        const ms = Math.ceil((lack * 1000) / s.refillPerSec);
        if (ms > wait) {
          wait = ms;
          blockedBy = i;
        }
      });
      if (blockedBy >= 0) return { allowed: false, retryAfterMs: wait, blockedBy };
      specs.forEach((s, i) => {
        const tokens = levels[i]! - cost;
        buckets.set(s.key, { tokens, at: t, full: t + Math.ceil(((s.capacity - tokens) * 1000) / s.refillPerSec) });
      });
      return { allowed: true, retryAfterMs: 0, blockedBy: -1 };
    },
  };
}
