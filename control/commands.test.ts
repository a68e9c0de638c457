// Operator commands on the in-process bus: validation (malformed messages logged and dropped, the receiver keeps
// working), dispatch to the owners only, acks, the expected count taken from the placement, and timeouts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createMemoryBus } from '../lib/bus/memory-bus.ts';
import type { Bus } from '../lib/bus/bus.ts';
import {
  HEALTH_CHANNEL,
  commandChannel,
  ingestCommandSchema,
  originCommandSchema,
  parseControlMessage,
} from '../lib/bus/control-messages.ts';
import type { Placement, PlacementSource } from '../lib/placement/types.ts';
import { createIngestCommandReceiver } from '../ingest/command-receiver.ts';
import { createPublisherRegistry } from '../ingest/publishers.ts';
import { createOriginCommandReceiver } from '../origin/command-receiver.ts';
import type { DateRange } from '../origin/playlist.ts';
import { createHealthPublisher } from '../ingest/health-publisher.ts';
import { createHealthFeed } from './health-feed.ts';
import { createControlCommands } from './commands.ts';
import type { IngestReport } from './health.ts';

const signal = new AbortController().signal;
const tick = () => new Promise((r) => setImmediate(r));

/** A logger whose warnings are kept, to see that drops are logged. */
function recordingLogger(): { logger: pino.Logger; warnings: string[] } {
  const warnings: string[] = [];
  const logger = pino(
    { level: 'warn' },
    {
      write: (line: string) =>
        void warnings.push((JSON.parse(line) as { msg: string; reason?: string }).msg + ' ' + (JSON.parse(line).reason ?? '')),
    },
  );
  return { logger, warnings };
}

test('parseControlMessage: JSON, object, version and schema are all checked', () => {
  const ok = { v: 1, id: 'c1', eventId: 'e1', sentAt: 1, kind: 'end' };
  assert.equal(parseControlMessage(ingestCommandSchema, JSON.stringify(ok)).ok, true);
  const reason = (raw: string) => {
    const r = parseControlMessage(ingestCommandSchema, raw);
    return r.ok ? 'ok' : r.reason;
  };
  assert.equal(reason('{nope'), 'not JSON');
  assert.equal(reason('[1]'), 'not an object');
  assert.equal(reason('null'), 'not an object');
  assert.match(reason(JSON.stringify({ ...ok, v: 2 })), /unsupported version 2/);
  assert.match(reason(JSON.stringify({ ...ok, v: undefined })), /unsupported version null/);
  assert.match(reason(JSON.stringify({ ...ok, kind: 'explode' })), /kind/);
  assert.match(reason(JSON.stringify({ ...ok, eventId: '' })), /eventId/);
  assert.equal(reason(JSON.stringify({ ...ok, extra: 'a newer sender' })), 'ok', 'fields added within a version are ignored');
  const mark = { v: 1, id: 'c2', eventId: 'e1', sentAt: 1, kind: 'ad_break', mark: { seq: 1, startMs: 5, plannedDurationSec: 30 } };
  assert.equal(parseControlMessage(originCommandSchema, JSON.stringify(mark)).ok, true);
  assert.match(
    (
      parseControlMessage(originCommandSchema, JSON.stringify({ ...mark, mark: { seq: -1, startMs: 5, plannedDurationSec: 30 } })) as {
        reason: string;
      }
    ).reason,
    /mark\.seq/,
  );
});

/** An ingest node on `bus` holding `eventId` through the real publisher registry; returns what it disconnected. */
async function ingestNode(bus: Bus, nodeId: string, eventId: string | undefined, logger = pino({ level: 'silent' })) {
  const publishers = createPublisherRegistry();
  const closed: string[] = [];
  const claims = new Map<string, { release(): void }>();
  if (eventId) {
    const r = await publishers.claim(eventId, { protocol: 'rtmp', lastActiveAt: () => Date.now(), evict: () => {} }, () => true);
    assert.ok(r.ok);
    claims.set(eventId, r.claim);
  }
  const receiver = createIngestCommandReceiver({
    bus,
    logger,
    nodeId,
    publishers,
    disconnect: (id, protocol) => {
      assert.equal(protocol, 'rtmp');
      closed.push(id);
      claims.get(id)?.release();
      return true;
    },
  });
  await receiver.start(signal);
  return { receiver, closed, publishers };
}

test('disconnect reaches only the ingest holding the event, which acks; malformed messages are dropped and logged', async () => {
  const bus = createMemoryBus();
  const { logger, warnings } = recordingLogger();
  const a = await ingestNode(bus, 'ingest-a', 'ev1', logger);
  const b = await ingestNode(bus, 'ingest-b', undefined, logger);
  const commands = createControlCommands({ bus, logger: pino({ level: 'silent' }), nodeId: 'ctl', ackTimeoutMs: 2_000 });
  await commands.start(signal);

  for (const junk of ['{', '[]', JSON.stringify({ v: 9, id: 'x', eventId: 'ev1', sentAt: 1, kind: 'end' }), JSON.stringify({ v: 1 })])
    await bus.publish(commandChannel('ingest'), junk);
  await tick();
  assert.equal(warnings.filter((w) => w.startsWith('malformed control command dropped')).length, 8, 'each receiver logged each of the 4');
  assert.deepEqual(a.closed, [], 'nothing acted on junk');

  const t0 = Date.now();
  const out = await commands.disconnect('ev1', 'end');
  assert.ok(Date.now() - t0 < 1_000, 'resolved on the ack, not the timeout');
  assert.equal(out.published, true);
  assert.equal(out.timedOut, false);
  assert.deepEqual(
    out.acks.map((x) => [x.node, x.role, x.applied]),
    [['ingest-a', 'ingest', true]],
  );
  assert.deepEqual(a.closed, ['ev1']);
  assert.deepEqual(b.closed, []);
  assert.equal(a.publishers.holderProtocol('ev1'), undefined, 'the claim was released');

  // Nobody holds it any more: no ack, the timeout is reported.
  const none = createControlCommands({ bus, logger: pino({ level: 'silent' }), nodeId: 'ctl2', ackTimeoutMs: 100 });
  await none.start(signal);
  const t1 = Date.now();
  const late = await none.disconnect('ev1', 'key_rotated');
  assert.ok(Date.now() - t1 >= 90);
  assert.deepEqual(late, { published: true, acks: [], timedOut: true });
  await Promise.all([commands.stop(), none.stop(), a.receiver.stop(), b.receiver.stop()]);
});

test('a handler that throws is logged; the receiver goes on with the next command', async () => {
  const bus = createMemoryBus();
  const { logger, warnings } = recordingLogger();
  let calls = 0;
  const receiver = createOriginCommandReceiver({
    bus,
    logger,
    nodeId: 'origin-a',
    stream: () => {
      if (++calls === 1) throw new Error('boom');
      return { packagers: new Map() };
    },
  });
  await receiver.start(signal);
  const commands = createControlCommands({ bus, logger: pino({ level: 'silent' }), nodeId: 'ctl', ackTimeoutMs: 150 });
  await commands.start(signal);
  const first = await commands.markAdBreak('ev1', { seq: 1, startMs: 1, plannedDurationSec: 30 });
  assert.equal(first.timedOut, true);
  assert.ok(warnings.some((w) => w.startsWith('control command failed')));
  const second = await commands.markAdBreak('ev1', { seq: 1, startMs: 1, plannedDurationSec: 30, endMs: 2 });
  assert.deepEqual(
    second.acks.map((x) => [x.node, x.applied, x.renditions]),
    [['origin-a', false, 0]],
  );
  await Promise.all([commands.stop(), receiver.stop()]);
});

test('ad-break marks reach every origin of the placement; the sender waits for all of them, and for none when not placed', async () => {
  const bus = createMemoryBus();
  const silent = pino({ level: 'silent' });
  const ranges = new Map<string, DateRange[]>();
  const origin = (id: string, carries: boolean) => {
    const list: DateRange[] = [];
    ranges.set(id, list);
    const packagers = new Map([
      ['720p', { setDateRange: (d: DateRange) => void list.push(d) }],
      ['360p', { setDateRange: (d: DateRange) => void list.push(d) }],
    ]);
    return createOriginCommandReceiver({
      bus,
      logger: silent,
      nodeId: id,
      stream: (e) => (carries && e === 'ev1' ? { packagers } : undefined),
    });
  };
  // Two origins carry ev1 (2 and 1 renditions), a third does not: the sender waits for both carriers' acks.
  const receivers = [origin('origin-a', true), origin('origin-c', false)];
  const bList: DateRange[] = [];
  ranges.set('origin-b', bList);
  const second = createOriginCommandReceiver({
    bus,
    logger: silent,
    nodeId: 'origin-b',
    stream: (e) => (e === 'ev1' ? { packagers: new Map([['720p', { setDateRange: (d: DateRange) => void bList.push(d) }]]) } : undefined),
  });
  for (const r of [...receivers, second]) await r.start(signal);
  const placement: Placement = {
    eventId: 'ev1',
    epoch: 3,
    ingest: 'ingest-a',
    origins: [
      { id: 'origin-a', url: 'http://a' },
      { id: 'origin-b', url: 'http://b' },
    ],
    timelineZeroMs: 0,
    session: 1,
    updatedAtMs: 0,
  };
  const placements: PlacementSource = { get: async (id) => (id === 'ev1' ? placement : undefined) };
  const commands = createControlCommands({ bus, logger: silent, nodeId: 'ctl', placements, ackTimeoutMs: 2_000 });
  await commands.start(signal);
  const out = await commands.markAdBreak('ev1', { seq: 7, startMs: 1_000, plannedDurationSec: 30 });
  assert.equal(out.timedOut, false);
  assert.deepEqual(out.acks.map((a) => a.node).sort(), ['origin-a', 'origin-b']);
  assert.equal(
    out.acks.reduce((n, a) => n + (a.renditions ?? 0), 0),
    3,
  );
  assert.deepEqual(
    ranges.get('origin-a')!.map((r) => r.id),
    ['ad-7', 'ad-7'],
  );
  assert.deepEqual(
    ranges.get('origin-b')!.map((r) => r.id),
    ['ad-7'],
  );
  assert.deepEqual(ranges.get('origin-c'), [], 'an origin not carrying the event is untouched');

  // Not placed: published, nobody expected, no wait.
  const t0 = Date.now();
  const idle = await commands.markAdBreak('ev2', { seq: 8, startMs: 1_000, plannedDurationSec: 30 });
  assert.ok(Date.now() - t0 < 500);
  assert.deepEqual(idle, { published: true, acks: [], timedOut: false });
  await commands.stop();
  for (const r of [...receivers, second]) await r.stop();
});

test('a bus that refuses the message: the command is reported as not sent', async () => {
  const bus = createMemoryBus();
  const commands = createControlCommands({ bus, logger: pino({ level: 'silent' }), nodeId: 'ctl' });
  await commands.start(signal);
  await bus.stop();
  assert.deepEqual(await commands.disconnect('ev1', 'end'), { published: false, acks: [], timedOut: false });
  await commands.stop();
});

test('ingest health travels on the bus to the control side; malformed samples are dropped', async () => {
  const bus = createMemoryBus();
  const { logger, warnings } = recordingLogger();
  const got: [string, IngestReport][] = [];
  const feed = createHealthFeed({ bus, logger, onReport: (id, r) => void got.push([id, r]) });
  await feed.start(signal);
  const pub = createHealthPublisher({ bus, logger, nodeId: 'ingest-a' });
  pub.onHealth('ev1', {
    protocol: 'rtmp',
    intervalSec: 2,
    publishStartedAt: 1_000,
    bitrateKbps: 2500,
    fps: 30,
    keyframeIntervalSec: 1,
    width: 640,
    height: 360,
    videoCodec: 'h264',
    audioCodec: 'aac',
    lateFrames: 0,
  });
  await bus.publish(HEALTH_CHANNEL, JSON.stringify({ v: 1, eventId: 'ev1', node: 'x', report: { protocol: 'rtmp' } }));
  await tick();
  assert.equal(got.length, 1);
  assert.equal(got[0]![0], 'ev1');
  assert.equal(got[0]![1].bitrateKbps, 2500);
  assert.equal(got[0]![1].publishStartedAt, 1_000);
  assert.ok(warnings.some((w) => w.startsWith('malformed health message dropped')));
  await feed.stop();
});
