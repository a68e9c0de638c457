// The chat role's lifecycle (lib/lifecycle.ts): building it starts nothing and writes nothing; start() brings up the
// bus and the gateway's timers and reads (or generates) the token secret; stop() undoes it and may run twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../config/load.ts';
import { TrustedProxies } from '../lib/client-address.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import { createTestStore } from '../test/support/test-store.ts';
import { createChatRole } from './role.ts';

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

test('the chat role starts nothing when built, starts on start(), stops on stop() (twice is fine)', async (t) => {
  const store = await createTestStore('chat-role');
  t.after(() => store.cleanup());
  const db = await store.open();
  const dataDir = join(store.dir, 'data');
  const config = loadConfig({}, { dataDir });
  const before = timers();
  const role = createChatRole({
    config,
    logger: createLogger('silent'),
    registry: createMetricsRegistry(),
    db,
    trustedProxies: new TrustedProxies(config.trustedProxies),
    eventExists: async () => true,
  });
  assert.equal(timers(), before, 'no timer before start()');
  assert.equal(existsSync(join(dataDir, 'viewer-token.secret')), false, 'no secret written before start()');

  await role.start(new AbortController().signal);
  assert.ok(existsSync(join(dataDir, 'viewer-token.secret')), 'the secret is generated at start');
  assert.ok(timers() > before, 'flush, presence and heartbeat timers run');
  assert.ok(role.tokens.verify(role.tokens.issue({ displayName: 'Alice' }).token));

  await role.stop();
  await role.stop();
  assert.equal(timers(), before, 'every timer is gone after stop()');
});
