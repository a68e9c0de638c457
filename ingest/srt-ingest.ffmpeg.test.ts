// The SRT ingest on its own, published to by ffmpeg's SRT output: FLV reaches the feed while the event loop stays
// free, stop() ends live sessions, the wrong-key lock-out reaches the handshake, and a passphrase is enforced.
// The whole path (origin, HLS, the publisher registry across protocols): test/e2e/srt.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadConfig } from '../config/load.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry, type Registry } from '../lib/metrics.ts';
import { publishTestStream } from '../scripts/publish-test-stream.ts';
import { waitFor } from '../test/support/wait-for.ts';
import type { LiveFeed } from './feed.ts';
import { createKeyGuessLimiter } from './key-guesses.ts';
import { createSrtIngest, type SrtIngest } from './srt-ingest.ts';

const KEY = 'sk_good-key-for-srt-tests';

interface Sink {
  opened: string[];
  bytes: Buffer[];
  ended: number;
}

function ingestWith(
  overrides: Record<string, unknown>,
  registry: Registry,
  keyGuesses = createKeyGuessLimiter(),
): { srt: SrtIngest; sink: Sink } {
  const sink: Sink = { opened: [], bytes: [], ended: 0 };
  const srt = createSrtIngest({
    config: loadConfig({}, { host: '127.0.0.1', srtPort: 0, ...overrides }),
    logger: createLogger('silent'),
    registry,
    keyGuesses,
    authorize: async (key) => (key === KEY ? 'event-1' : undefined),
    feeds: {
      open: (eventId): LiveFeed => {
        sink.opened.push(eventId);
        return { write: (b) => void sink.bytes.push(b), end: () => void sink.ended++ };
      },
    },
  });
  return { srt, sink };
}

function publish(port: number, streamId: string, extra = '') {
  return publishTestStream({
    url: `srt://127.0.0.1:${port}?streamid=${streamId}${extra}`,
    durationSec: 30,
    width: 320,
    height: 240,
    fps: 25,
    videoKbps: 300,
    preset: 'ultrafast',
  });
}

async function rejected(registry: Registry, reason: string): Promise<number> {
  const m = (await registry.getSingleMetric('onair_ingest_rejected_total')?.get())?.values ?? [];
  return m.find((v) => v.labels.protocol === 'srt' && v.labels.reason === reason)?.value ?? 0;
}

test('a publish reaches the feed as FLV without blocking the event loop; stop() ends it', async () => {
  const registry = createMetricsRegistry();
  const { srt, sink } = ingestWith({}, registry);
  await srt.start(new AbortController().signal);
  const port = srt.port!;
  assert.ok(port > 0);
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const p = publish(port, `publish:${KEY}`);
  try {
    await waitFor('FLV tags in the feed', () => sink.bytes.length > 50, 20_000);
    assert.deepEqual(sink.opened, ['event-1']);
    assert.equal(sink.bytes[0]!.subarray(0, 3).toString(), 'FLV');
    assert.ok(srt.isLive('event-1'));
    delay.disable();
    const p99 = delay.percentile(99) / 1e6;
    // A blocking libsrt call (accept, recv, epoll wait) would hold the loop for its whole timeout or forever.
    console.log(
      `event loop delay while publishing: p50 ${(delay.percentile(50) / 1e6).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${(delay.max / 1e6).toFixed(1)} ms`,
    );
    assert.ok(p99 < 1000, `event loop delay p99 ${p99} ms`);
  } finally {
    await srt.stop();
  }
  assert.equal(sink.ended, 1);
  assert.equal(srt.isLive('event-1'), false);
  // The publisher sees its connection end.
  const code = await p.done;
  assert.notEqual(code, 0);
});

test('an address locked out for wrong keys is refused in the handshake, right key or not', async () => {
  const registry = createMetricsRegistry();
  const { srt, sink } = ingestWith({}, registry, createKeyGuessLimiter({ maxFailures: 2, windowSec: 60 }));
  await srt.start(new AbortController().signal);
  try {
    for (let i = 0; i < 2; i++) assert.notEqual(await publish(srt.port!, 'publish:sk_wrong').done, 0);
    assert.equal(await rejected(registry, 'unknown_key'), 2);
    assert.notEqual(await publish(srt.port!, `publish:${KEY}`).done, 0);
    assert.equal(await rejected(registry, 'rate_limited'), 1);
    assert.deepEqual(sink.opened, []);
  } finally {
    await srt.stop();
  }
});

test('with a passphrase, a publisher without it is refused and one with it gets through', async () => {
  const registry = createMetricsRegistry();
  const passphrase = 'correct-horse-battery';
  const { srt, sink } = ingestWith({ srtPassphrase: passphrase }, registry);
  await srt.start(new AbortController().signal);
  try {
    assert.notEqual(await publish(srt.port!, `publish:${KEY}`).done, 0);
    assert.deepEqual(sink.opened, []);
    const p = publish(srt.port!, `publish:${KEY}`, `&passphrase=${passphrase}`);
    await waitFor('the encrypted publish to reach the feed', () => sink.bytes.length > 10, 20_000);
    p.child.kill('SIGKILL');
    await waitFor('the publish to end', () => sink.ended === 1, 15_000);
  } finally {
    await srt.stop();
  }
});
