// The console served by a control node shows where a live event runs (cluster mode): ingest node, origins with the
// primary first, epoch; admins get each origin's URL on hover, moderators do not; the line goes once the event is
// no longer placed. Needs the built player (npm run build).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configSchema } from '../config/schema.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import { ServiceGroup } from '../lib/lifecycle.ts';
import { createRealtimeBackend } from '../chat/backend.ts';
import type { Placement } from '../lib/placement/types.ts';
import { EventService } from '../control/events.ts';
import { createTestStore } from '../test/support/test-store.ts';
import { launchChromium } from '../test/support/chromium.ts';
import { waitFor } from '../test/support/wait-for.ts';
import { addControlNode } from './control-node.ts';

test('console on a control node: the live event shows its placement; URLs for admins only', { timeout: 120_000 }, async () => {
  const store = await createTestStore('control-node-console');
  const group = new ServiceGroup();
  const chromium = await launchChromium();
  try {
    const logger = createLogger('silent');
    const db = await store.open();
    const config = configSchema.parse({ dataDir: store.dir, httpPort: 0, host: '127.0.0.1' });
    const backend = createRealtimeBackend({ mode: 'pubsub', logger });
    group.add('bus', backend);
    const placed = new Map<string, Placement>();
    const node = addControlNode(group, {
      config,
      logger,
      registry: createMetricsRegistry(),
      db,
      backend,
      nodeId: 'control-1',
      placements: { get: async (id) => placed.get(id) },
    });
    await group.start();
    const base = `http://127.0.0.1:${node.httpPort()}`;
    await node.control.operators.create({ email: 'admin@example.com', role: 'admin', password: 'admin-password-1' });
    await node.control.operators.create({ email: 'mod@example.com', role: 'moderator', password: 'moderator-pass-1' });
    const events = new EventService(db);
    const { event } = await events.create({ title: 'Placed show' });
    await events.setStatus(event.id, 'live');
    placed.set(event.id, {
      eventId: event.id,
      epoch: 12,
      ingest: 'ingest-2',
      origins: [
        { id: 'origin-1', url: 'http://10.0.0.1:8081' },
        { id: 'origin-3', url: 'http://10.0.0.3:8081' },
      ],
      timelineZeroMs: 0,
      session: 1,
      updatedAtMs: 0,
    });

    const open = async (email: string, password: string) => {
      const ctx = await chromium.browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await ctx.newPage();
      await page.goto(`${base}/console`);
      await page.fill('input[name=email]', email);
      await page.fill('input[name=password]', password);
      await page.click('button[type=submit]');
      await page.waitForSelector('#whoami', { timeout: 10_000 });
      await page.goto(`${base}/console/events/${event.id}`);
      await page.waitForSelector('[data-role=placement]:not([hidden])', { timeout: 10_000 });
      return { ctx, page };
    };

    const admin = await open('admin@example.com', 'admin-password-1');
    const text = (await admin.page.textContent('[data-role=placement]'))!.replace(/\s+/g, ' ');
    assert.match(text, /ingest ingest-2/);
    assert.match(text, /origin-1 \(primary\),\s?origin-3/);
    assert.match(text, /epoch 12/);
    assert.deepEqual(await admin.page.$$eval('.placement-origin', (els) => els.map((e) => e.getAttribute('title'))), [
      'http://10.0.0.1:8081',
      'http://10.0.0.3:8081',
    ]);

    const mod = await open('mod@example.com', 'moderator-pass-1');
    assert.match((await mod.page.textContent('[data-role=placement]'))!, /epoch 12/);
    assert.deepEqual(
      await mod.page.$$eval('.placement-origin', (els) => els.map((e) => e.getAttribute('title'))),
      [null, null],
      'no origin URLs for moderators',
    );

    // Re-placed with a new epoch, then released: the poll follows.
    placed.set(event.id, { ...placed.get(event.id)!, epoch: 13, origins: [{ id: 'origin-2', url: 'http://10.0.0.2:8081' }] });
    await waitFor('new epoch shown', async () => (await admin.page.getAttribute('[data-role=placement]', 'data-epoch')) === '13', 10_000);
    assert.match((await admin.page.textContent('[data-role=placement]'))!, /origin origin-2 \(primary\)/);
    placed.delete(event.id);
    await admin.page.waitForSelector('[data-role=placement][hidden]', { state: 'attached', timeout: 10_000 });
    await admin.ctx.close();
    await mod.ctx.close();
  } finally {
    await chromium.close();
    await group.stop();
    await store.cleanup();
  }
});
