import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { loadConfig } from '../config/load.ts';
import type { Role } from '../config/schema.ts';
import { advertisedOriginUrl, checkClusterRoles, nodeIdOf, originCapacityOf } from './cluster-settings.ts';

const full = {
  REDIS_URL: 'redis://127.0.0.1:6379',
  DATABASE_URL: 'postgres://onair@127.0.0.1/onair',
  ONAIR_CLUSTER_SECRET: 'c'.repeat(32),
  ONAIR_VIEWER_TOKEN_SECRET: 'v'.repeat(32),
};
const check = (roles: Role[], env: Record<string, string | undefined>) =>
  checkClusterRoles(
    new Set(roles),
    loadConfig(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as Record<string, string>),
  );

test('a cluster role missing what it needs stops with a message naming the setting', () => {
  for (const roles of [['ingest'], ['origin'], ['edge', 'control'], ['ingest', 'origin', 'edge', 'control']] as Role[][]) {
    assert.doesNotThrow(() => check(roles, full), roles.join(','));
  }
  assert.throws(() => check(['origin'], { ...full, REDIS_URL: undefined }), /--role origin runs in a cluster: it needs Redis .*REDIS_URL/);
  assert.throws(() => check(['ingest'], { ...full, ONAIR_CLUSTER_SECRET: undefined }), /--role ingest needs ONAIR_CLUSTER_SECRET/);
  assert.throws(() => check(['origin'], { ...full, ONAIR_CLUSTER_SECRET: undefined }), /ONAIR_CLUSTER_SECRET/);
  assert.throws(
    () => check(['control'], { ...full, ONAIR_VIEWER_TOKEN_SECRET: undefined }),
    /--role control needs ONAIR_VIEWER_TOKEN_SECRET/,
  );
  assert.throws(() => check(['ingest'], { ...full, DATABASE_URL: undefined }), /shared PostgreSQL store \(DATABASE_URL/);
  assert.doesNotThrow(() => check(['origin'], { ...full, DATABASE_URL: undefined, ONAIR_VIEWER_TOKEN_SECRET: undefined }));
});

test('node id, origin capacity and the advertised origin URL', () => {
  assert.equal(nodeIdOf({ nodeId: 'origin-7' }), 'origin-7');
  assert.match(nodeIdOf({}), new RegExp(`^[A-Za-z0-9._-]+-${process.pid}$`));
  assert.equal(originCapacityOf({ originCapacity: 3 }), 3);
  assert.equal(originCapacityOf({ originCapacity: 0 }), availableParallelism());
  assert.equal(advertisedOriginUrl({ host: '0.0.0.0' }, 9001), 'http://127.0.0.1:9001');
  assert.equal(advertisedOriginUrl({ host: '10.0.0.5' }, 9001), 'http://10.0.0.5:9001');
  assert.equal(advertisedOriginUrl({ host: 'fd00::5' }, 9001), 'http://[fd00::5]:9001');
  assert.equal(
    advertisedOriginUrl({ host: '0.0.0.0', originAdvertiseUrl: 'http://origin-7.internal:9001/' }, 1),
    'http://origin-7.internal:9001',
  );
});
