// Reads figures from a server's Prometheus text exposition (/metrics), for benchmarks.

/** Sum and count of a Prometheus histogram (its first series) in the text exposition at `metricsUrl`. */
export async function histogram(metricsUrl: string, name: string): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(metricsUrl)).text();
  const value = (suffix: string) => Number(new RegExp(`^${name}_${suffix}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { sum: value('sum'), count: value('count') };
}

/** Mean of a histogram's observations between two readings, in ms (one decimal); undefined when none. */
export function meanMs(before: { sum: number; count: number }, after: { sum: number; count: number }): number | undefined {
  const n = after.count - before.count;
  return n > 0 ? Math.round(((after.sum - before.sum) / n) * 10_000) / 10 : undefined;
}

/** Sum of every series of a Prometheus counter in the text exposition at `metricsUrl` (0 when absent). */
export async function counterSum(metricsUrl: string, name: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}
