// Stream-key guessing limit, shared by the RTMP and WHIP ingests: an address that sends too many wrong keys within
// a window is refused outright (even with a right key) until the window ends.
import { RateLimiterMemory } from 'rate-limiter-flexible';

/** Counts wrong stream keys per remote address. */
export interface KeyGuessLimiter {
  /** Seconds until `address` may try again, or undefined when it may try now. */
  blockedFor(address: string): Promise<number | undefined>;
  /** Records a wrong or missing key from `address`. */
  failed(address: string): Promise<void>;
}

/** An in-process limiter: `maxFailures` wrong keys per address per `windowSec`. */
export function createKeyGuessLimiter({ maxFailures = 10, windowSec = 60 } = {}): KeyGuessLimiter {
  const failures = new RateLimiterMemory({ points: maxFailures, duration: windowSec });
  return {
    async blockedFor(address) {
      const r = await failures.get(address);
      return r && r.consumedPoints >= maxFailures ? Math.max(1, Math.ceil(r.msBeforeNext / 1000)) : undefined;
    },
    async failed(address) {
      await failures.penalty(address, 1);
    },
  };
}
