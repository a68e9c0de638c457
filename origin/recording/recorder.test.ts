import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { LocalStorage, type Storage } from '../../lib/storage/storage.ts';
import { Recorder, type RecordingHooks, type RecordingInfo } from './recorder.ts';
import { DEFAULT_WRITE_QUEUE } from './write-queue.ts';
import { loadLatestManifest } from './replay.ts';
import { manifestSummary } from './manifest.ts';

const logger = pino({ level: 'silent' });
const ZERO = 1_764_000_000_000;

/** A packager stand-in: emits init and segment events as RenditionPackager does. */
class FakeRendition extends EventEmitter {
  constructor(readonly name: string) {
    super();
  }
  segment(msn: number, session = 1, run = 100, durationSec = 2) {
    const bytes = Buffer.alloc(1000, msn % 256);
    this.emit('segment', {
      msn,
      run,
      durationSec,
      programDateTimeMs: ZERO + (msn - 100) * 2000,
      discontinuitySequence: session - 1,
      bytes: () => bytes,
    });
  }
}

function hooks(record = true) {
  const calls = { failed: [] as string[], ready: [] as { durationSec: number; segments: number }[], begun: [] as RecordingInfo[] };
  const h: RecordingHooks = {
    begin: async (r) => {
      calls.begun.push(r);
      return record;
    },
    failed: (_r, reason) => calls.failed.push(reason),
    ready: (_r, s) => calls.ready.push(s),
  };
  return { h, calls };
}

const variants = () =>
  ['360p', '240p'].map((name, i) => ({
    uri: `${name}/index.m3u8`,
    bandwidth: 800_000 - i * 300_000,
    averageBandwidth: 700_000 - i * 300_000,
    codecs: 'avc1.64001e,mp4a.40.2',
    width: 640 - i * 214,
    height: 360 - i * 120,
    frameRate: 30,
  }));

function recorder(storage: Storage, h: RecordingHooks, queue = {}) {
  return new Recorder({
    eventId: 'event-1',
    zeroMs: ZERO,
    storage,
    queue: { ...DEFAULT_WRITE_QUEUE, retryBaseMs: 10, ...queue },
    hooks: h,
    logger,
    segmentTargetSec: 2,
    variants,
  });
}

test('records every rendition; a reconnect continues the recording; the manifest rebuilds it; ready once ended', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'onair-rec-'));
  try {
    const storage = new LocalStorage(dir);
    const { h, calls } = hooks();
    const r = recorder(storage, h);
    const a = new FakeRendition('360p');
    const b = new FakeRendition('240p');
    r.attach(a);
    r.attach(b);
    for (const p of [a, b]) p.emit('init', 100, Buffer.from('init-100'));
    for (let msn = 100; msn < 104; msn++) for (const p of [a, b]) p.segment(msn);
    // The publisher reconnects: a new session (discontinuity sequence 1) and a new run (init).
    for (const p of [a, b]) p.emit('init', 110, Buffer.from('init-110'));
    for (let msn = 110; msn < 112; msn++) for (const p of [a, b]) p.segment(msn, 2, 110);
    await r.end();
    assert.deepEqual(calls.failed, []);
    assert.equal(calls.begun[0]!.id, `event-1.${ZERO}`);
    assert.deepEqual(
      calls.ready.map((s) => [s.durationSec, s.segments]),
      [[12, 6]],
    );
    const m = await loadLatestManifest(storage, 'event-1');
    assert.ok(m);
    assert.equal(m.renditions.length, 2);
    assert.deepEqual(
      m.renditions[0]!.segments.map((s) => [s.msn, s.run, s.discontinuitySequence]),
      [
        [100, 100, 0],
        [101, 100, 0],
        [102, 100, 0],
        [103, 100, 0],
        [110, 110, 1],
        [111, 110, 1],
      ],
    );
    assert.ok(m.endedAtMs !== undefined);
    assert.deepEqual(manifestSummary(m), { durationSec: 12, bytes: 12_000, segments: 6 });
    assert.deepEqual(
      (await storage.list(`event-1/${ZERO}/360p/`)).map((o) => o.key.split('/').at(-1)),
      ['init-100.mp4', 'init-110.mp4', 'seg-100.m4s', 'seg-101.m4s', 'seg-102.m4s', 'seg-103.m4s', 'seg-110.m4s', 'seg-111.m4s'],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a failing store: live is not delayed, the recording is marked failed with the reason, once', async () => {
  const failing: Storage = {
    kind: 'local',
    where: 'broken',
    put: async () => {
      throw new Error('ENOSPC: no space left on device');
    },
    get: async () => undefined,
    list: async () => [],
    delete: async () => {},
    deletePrefix: async () => 0,
  };
  const { h, calls } = hooks();
  const r = recorder(failing, h, { attempts: 2 });
  const a = new FakeRendition('360p');
  r.attach(a);
  a.emit('init', 100, Buffer.from('init'));
  const started = performance.now();
  for (let msn = 100; msn < 150; msn++) a.segment(msn);
  const tookMs = performance.now() - started;
  assert.ok(tookMs < 50, `50 segments handed over in ${tookMs.toFixed(1)} ms`);
  await r.end(2000);
  assert.equal(calls.failed.length, 1);
  assert.match(calls.failed[0]!, /ENOSPC: no space left on device/);
  assert.equal(r.state, 'failed');
  assert.deepEqual(calls.ready, []);
});

test('a store that hangs: past the queue bound the recording fails, segments keep coming without waiting', async () => {
  const hanging: Storage = {
    kind: 's3',
    where: 'hanging',
    put: () => new Promise(() => {}),
    get: async () => undefined,
    list: async () => [],
    delete: async () => {},
    deletePrefix: async () => 0,
  };
  const { h, calls } = hooks();
  const r = recorder(hanging, h, { maxBytes: 10_000, attemptTimeoutMs: 60_000 });
  const a = new FakeRendition('360p');
  r.attach(a);
  await new Promise((res) => setTimeout(res, 10)); // begin() resolved: recording
  const started = performance.now();
  for (let msn = 100; msn < 200; msn++) a.segment(msn);
  assert.ok(performance.now() - started < 50);
  assert.equal(calls.failed.length, 1);
  assert.match(calls.failed[0]!, /storage too slow/);
  assert.ok(r.pendingBytes <= 10_000);
});

test('an event with recording off writes nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'onair-rec-'));
  try {
    const storage = new LocalStorage(dir);
    const { h, calls } = hooks(false);
    const r = recorder(storage, h);
    const a = new FakeRendition('360p');
    r.attach(a);
    a.emit('init', 100, Buffer.from('init'));
    a.segment(100);
    await new Promise((res) => setTimeout(res, 20));
    await r.end();
    assert.equal(r.state, 'off');
    assert.deepEqual(calls.failed, []);
    assert.deepEqual(await storage.list(''), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
