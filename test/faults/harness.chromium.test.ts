// The fault suite's measuring pieces against one all-in-one server: a reconnecting ffmpeg publisher, a Chromium
// viewer on the real watch page, two chat users. The viewer plays with no fatal error; the publisher killed and kept
// away for 3 s shows up as a stall and a discontinuity once it reconnects; every acknowledged comment is stored.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchChromium } from '../support/chromium.ts';
import { startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { signInAdmin, publishUrl } from './api.ts';
import { ackedBetween, lostComments, readAllComments, startChatUser, type ChatUser } from './chat-users.ts';
import { startReconnectingPublisher, type ReconnectingPublisher } from './publisher.ts';
import { ensurePlayerBuilt, openViewer, type Viewer } from './viewer.ts';

let server: ServerUnderTest | undefined;
let publisher: ReconnectingPublisher | undefined;
let chromium: Awaited<ReturnType<typeof launchChromium>> | undefined;
let viewer: Viewer | undefined;
const users: ChatUser[] = [];
let eventId = '';

before(async () => {
  ensurePlayerBuilt();
  // Comments every 500 ms per user: above the default 1/s bucket, so the test raises it.
  server = await startServer({ ONAIR_LOG_LEVEL: 'warn', ONAIR_CHAT_COMMENTS_PER_SEC: '4', ONAIR_CHAT_COMMENT_BURST: '8' });
  const admin = await signInAdmin(server.base, server.env);
  const made = await admin.createEvent('fault harness');
  eventId = made.event.id;
  publisher = startReconnectingPublisher({ url: publishUrl(`rtmp://127.0.0.1:${server.rtmpPort}`, made.streamKey) });
  await publisher.waitPublishing(2000, 20_000);
  chromium = await launchChromium();
  viewer = await openViewer(chromium.browser, `${server.base}/watch/${made.event.slug}`);
  users.push(await startChatUser({ base: server.base, eventId, displayName: 'Ada' }));
  users.push(await startChatUser({ base: server.base, eventId, displayName: 'Bob' }));
});

after(async () => {
  for (const u of users) await u.stop().catch(() => undefined);
  await viewer?.close();
  await chromium?.close();
  await publisher?.stop();
  await server?.stop();
});

test('the viewer plays without fatal errors; a 3 s publisher outage is one stall and a discontinuity; no acked comment lost', async (t) => {
  await viewer!.waitPlaying(40_000);
  const steadyFrom = viewer!.mark('steady');
  await new Promise((r) => setTimeout(r, 4000));
  const steady = await viewer!.snapshot('steady');
  assert.equal(steady.fatalErrors, 0, `fatal errors while steady: ${steady.fatalDetails.join(', ')}`);
  assert.ok(steady.position > 0, 'the video advanced');

  viewer!.mark('kill');
  await publisher!.interrupt(3000);
  assert.equal(publisher!.pid, undefined, 'ffmpeg is held off');
  await publisher!.waitPublishing(1000, 20_000);
  assert.equal(publisher!.reconnects, 1);
  // Recovered once it plays past the discontinuity the reconnect starts; the video moving is not enough (a gap
  // nudge inside the old buffer moves it while still stalled). Bounded: 30 s.
  const deadline = Date.now() + 30_000;
  let fault = await viewer!.snapshot('kill');
  while ((fault.discontinuities < 1 || fault.stalledAtEnd) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    fault = await viewer!.snapshot('kill');
  }
  t.diagnostic(`publisher outage: ${JSON.stringify(fault)}`);
  assert.ok(fault.stalls >= 1, `the outage is a stall: ${JSON.stringify(fault)}`);
  assert.ok(fault.longestStallSec >= 1, `the stall lasts: ${JSON.stringify(fault)}`);
  assert.ok(fault.discontinuities >= 1, `a discontinuity: ${JSON.stringify(fault)}`);
  // Recovered: playing again (a short re-stall right after the reconnect, on loaded cores, is not a failure).
  if (fault.stalledAtEnd) await viewer!.waitPlaying(20_000);
  const whole = await viewer!.snapshot(steadyFrom);
  assert.equal(whole.fatalErrors, 0, `fatal errors: ${whole.fatalDetails.join(', ')}`);

  for (const u of users) await u.stop();
  const stored = await readAllComments(server!.base, eventId);
  const acked = ackedBetween(
    users.map((u) => u.stats),
    0,
  );
  t.diagnostic(`chat: ${JSON.stringify(users.map((u) => ({ ...u.stats, acked: u.stats.acked.size })))}; stored ${stored.size}`);
  assert.ok(acked >= 10, `comments acknowledged: ${acked}`);
  assert.deepEqual(
    lostComments(
      users.map((u) => u.stats),
      stored,
    ),
    [],
  );
  // The check can fail: a comment acknowledged with an id the store does not have is counted lost.
  assert.deepEqual(lostComments([{ ...users[0]!.stats, acked: new Map([['x', { id: 'c_missing', seq: 1, at: 1 }]]) }], stored), ['x']);
});
