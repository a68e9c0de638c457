// Feed taps: the origin gets every byte unchanged; a reader joins at the last keyframe and ends with the publish.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { describeTags, parseFlv, synthStream } from '../test/support/flv-synth.ts';
import { createFeedTaps, type FeedReader } from './feed-taps.ts';

const logger = pino({ level: 'silent' });
const source = { protocol: 'rtmp' as const, sessionId: 's1', remoteAddress: '127.0.0.1' };

function recorder(): FeedReader & { chunks: Buffer[]; ended: boolean } {
  const r = { chunks: [] as Buffer[], ended: false, data: (b: Buffer) => void r.chunks.push(b), end: () => void (r.ended = true) };
  return r;
}

test('a tapped feed passes every byte on, and a reader starts at the last keyframe then follows live', async () => {
  const written: Buffer[] = [];
  let ended = 0;
  const taps = createFeedTaps(logger);
  const sink = taps.wrap({ open: () => ({ write: (b) => void written.push(b), end: () => void ended++ }) });
  const feed = await sink.open('ev1', source);
  const pieces = synthStream({ frames: 40, gopFrames: 30 });
  for (const p of pieces.slice(0, 4)) feed.write(p);
  assert.equal(taps.live('ev1'), undefined, 'no keyframe yet: not offered');
  for (const p of pieces.slice(4, 4 + 2 * 35)) feed.write(p);
  const tap = taps.live('ev1')!;
  assert.equal(tap.hasAudio, true);
  const r = recorder();
  tap.read(r);
  const joined = describeTags(parseFlv(Buffer.concat(r.chunks)).tags);
  assert.deepEqual(joined.slice(0, 4), ['meta', 'avc-config', 'aac-config', 'key@1000']);
  for (const p of pieces.slice(4 + 2 * 35)) feed.write(p);
  assert.deepEqual(Buffer.concat(written), Buffer.concat(pieces), 'the origin sees the feed unchanged');
  assert.equal(describeTags(parseFlv(Buffer.concat(r.chunks)).tags).at(-1), 'a@1300', 'live tags follow');
  feed.end();
  assert.equal(ended, 1);
  assert.equal(r.ended, true);
  assert.equal(taps.live('ev1'), undefined);
});

test('a new publish of the event ends the readers of the previous one; a broken feed stops only the tap', async () => {
  const taps = createFeedTaps(logger);
  const written: Buffer[] = [];
  const sink = taps.wrap({ open: () => ({ write: (b) => void written.push(b), end: () => {} }) });
  const first = await sink.open('ev1', source);
  for (const p of synthStream({ frames: 2 })) first.write(p);
  const r = recorder();
  taps.live('ev1')!.read(r);
  const second = await sink.open('ev1', { ...source, sessionId: 's2' });
  assert.equal(r.ended, true, 'the old stream ended for its readers');
  second.write(Buffer.from('not an FLV stream'));
  assert.equal(taps.live('ev1'), undefined);
  assert.equal(written.at(-1)!.toString(), 'not an FLV stream', 'the origin still gets the bytes and judges them');
  first.end();
});
