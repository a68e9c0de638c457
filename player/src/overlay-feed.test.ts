// Unit tests of the viewer overlay state: welcome snapshot, batch signals (idempotent, remainingSec), late joiners.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OverlayFeed, isVideoCreative, type OverlayState } from './overlay-feed.ts';
import { obsServerUrl } from './console-obs.ts';

function feed(): { f: OverlayFeed; states: OverlayState[]; statuses: string[] } {
  const states: OverlayState[] = [];
  const statuses: string[] = [];
  const f = new OverlayFeed(
    'ev1',
    (s) => states.push(s),
    (s) => statuses.push(s),
  );
  return { f, states, statuses };
}

test('welcome overlays: flashes, disclaimer and a running ad break for a late joiner', () => {
  const { f, states } = feed();
  const now = Date.now();
  assert.equal(
    f.applyMessage({
      type: 'welcome',
      overlays: {
        newsFlashes: [{ id: 'nf1', text: 'hello', severity: 'warning', at: now - 1000, expiresAt: now + 30_000 }],
        disclaimer: { id: 'd1', text: 'own opinions', severity: 'info', at: now - 5000 },
        adBreak: { id: 'ab1', startAt: now - 10_000, durationSec: 30, creativeUrl: null, remainingSec: 20 },
        eventStatus: 'live',
        serverTime: now,
      },
    }),
    true,
  );
  const s = states.at(-1)!;
  assert.deepEqual(
    s.newsFlashes.map((x) => x.text),
    ['hello'],
  );
  assert.equal(s.disclaimer?.text, 'own opinions');
  assert.equal(s.adBreak?.id, 'ab1');
  const left = s.adBreak!.startAt + s.adBreak!.durationSec * 1000 - (Date.now() + s.skewMs);
  assert.ok(left > 19_000 && left <= 20_100, String(left));
});

test('batch signals apply in order and idempotently; a cleared flash does not come back', () => {
  const { f, states, statuses } = feed();
  const now = Date.now();
  const flash = { id: 'nf2', text: 'breaking', severity: 'critical', at: now, expiresAt: now + 60_000, remainingSec: 60 };
  f.applyMessage({
    type: 'batch',
    signals: [
      { signal: 'news_flash', flash },
      { signal: 'news_flash', flash },
    ],
  });
  assert.equal(states.at(-1)!.newsFlashes.length, 1);
  f.applyMessage({
    type: 'batch',
    signals: [
      { signal: 'news_flash_cleared', id: 'nf2' },
      { signal: 'news_flash', flash },
    ],
  });
  assert.equal(f.state().newsFlashes.length, 0);
  f.applyMessage({
    type: 'batch',
    signals: [
      {
        signal: 'ad_break_start',
        adBreak: { id: 'ab2', startAt: now, durationSec: 15, creativeUrl: 'https://x/ad.png', remainingSec: 15 },
      },
    ],
  });
  assert.equal(f.state().adBreak?.creativeUrl, 'https://x/ad.png');
  f.applyMessage({ type: 'batch', signals: [{ signal: 'ad_break_end', id: 'ab2' }] });
  assert.equal(f.state().adBreak, null);
  f.applyMessage({ type: 'batch', signals: [{ signal: 'disclaimer', disclaimer: { id: 'd2', text: 'x', severity: 'info', at: now } }] });
  assert.equal(f.state().disclaimer?.id, 'd2');
  f.applyMessage({ type: 'batch', signals: [{ signal: 'disclaimer', disclaimer: null }] });
  assert.equal(f.state().disclaimer, null);
  f.applyMessage({
    type: 'batch',
    signals: [
      { signal: 'event_status', status: 'live' },
      { signal: 'event_status', status: 'ended' },
    ],
  });
  assert.deepEqual(statuses, ['ended'], 'status changes are reported, the first one only sets the baseline');
  assert.equal(f.applyMessage({ type: 'batch', comments: [] }), false);
  assert.equal(f.applyMessage({ type: 'ack' }), false);
});

test('expired flashes and finished ad breaks drop out of the state', () => {
  const { f } = feed();
  const now = Date.now();
  f.applyMessage({
    type: 'overlays',
    newsFlashes: [{ id: 'old', text: 'old', severity: 'info', at: now - 60_000, expiresAt: now - 1 }],
    disclaimer: null,
    adBreak: null,
    serverTime: now,
  });
  assert.equal(f.state().newsFlashes.length, 0);
  f.applyMessage({
    type: 'batch',
    signals: [{ signal: 'ad_break_start', adBreak: { id: 'ab3', startAt: now - 20_000, durationSec: 10, creativeUrl: null } }],
  });
  assert.equal(f.state().adBreak, null);
});

test('creative kind and OBS server URL', () => {
  assert.equal(isVideoCreative('https://ads.example/spot.mp4?x=1'), true);
  assert.equal(isVideoCreative('https://ads.example/banner.png'), false);
  assert.equal(obsServerUrl('rtmp://live.example.com:1935/live', 'x'), 'rtmp://live.example.com/live');
  assert.equal(obsServerUrl('rtmp://127.0.0.1:41000/live', 'x'), 'rtmp://127.0.0.1:41000/live');
  assert.equal(obsServerUrl(null, 'studio.local'), 'rtmp://studio.local/live');
});
