import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, ConfigError, envName } from './load.ts';
import { makeTempDir } from '../test/support/temp-dir.ts';

test('defaults apply with an empty environment', () => {
  const c = loadConfig({});
  assert.equal(c.httpPort, 8080);
  assert.equal(c.rtmpPort, 1935);
  assert.deepEqual(
    c.ladder.map((r) => r.name),
    ['720p', '480p', '360p'],
  );
  assert.ok(
    c.ladder.every((r) => r.fps === undefined),
    'the default ladder follows the source frame rate',
  );
  assert.equal(c.segmentTargetSec, 2);
});

test('ONAIR_* variables override, numbers and lists parsed', () => {
  const c = loadConfig({
    ONAIR_HTTP_PORT: '9000',
    ONAIR_ORIGIN_URLS: 'http://a:1,http://b:2',
    ONAIR_LADDER: '[{"name":"360p","height":360,"fps":30,"videoKbps":700}]',
  });
  assert.equal(c.httpPort, 9000);
  assert.deepEqual(c.originUrls, ['http://a:1', 'http://b:2']);
  assert.equal(c.ladder[0]?.name, '360p');
});

test('ONAIR_LADDER: a rung fps may be fractional or omitted (follow the source)', () => {
  const c = loadConfig({
    ONAIR_LADDER: '[{"name":"720p","height":720,"fps":29.97,"videoKbps":2800},{"name":"360p","height":360,"videoKbps":700}]',
  });
  assert.equal(c.ladder[0]?.fps, 29.97);
  assert.equal(c.ladder[1]?.fps, undefined);
});

test('an invalid value names the field', () => {
  assert.throws(
    () => loadConfig({ ONAIR_HTTP_PORT: 'eighty' }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /ONAIR_HTTP_PORT/);
      return true;
    },
  );
  assert.throws(() => loadConfig({ ONAIR_WINDOW_SEGMENTS: '3' }), /ONAIR_WINDOW_SEGMENTS/);
  assert.throws(() => loadConfig({ ONAIR_LADDER: '[{"name":"x","height":1}]' }), /ONAIR_LADDER \(ladder\.0/);
});

test('unknown ONAIR_ variables are refused', () => {
  assert.throws(() => loadConfig({ ONAIR_HTTP_PROT: '1' }), /ONAIR_HTTP_PROT: unknown setting/);
});

test('the environment overrides the config file', () => {
  const tmp = makeTempDir('cfg');
  try {
    const file = join(tmp.path, 'c.json');
    writeFileSync(file, JSON.stringify({ httpPort: 7000, rtmpPort: 7001 }));
    const c = loadConfig({ ONAIR_CONFIG: file, ONAIR_RTMP_PORT: '7002' });
    assert.equal(c.httpPort, 7000);
    assert.equal(c.rtmpPort, 7002);
    writeFileSync(file, '{"bogus": 1}');
    assert.throws(() => loadConfig({ ONAIR_CONFIG: file }), /bogus|Unrecognized/);
  } finally {
    tmp.remove();
  }
});

test('envName maps camelCase keys', () => {
  assert.equal(envName('reconnectWindowSec'), 'ONAIR_RECONNECT_WINDOW_SEC');
});

test('REDIS_URL and DATABASE_URL stand in for ONAIR_REDIS_URL and ONAIR_DATABASE_URL', () => {
  assert.equal(loadConfig({ REDIS_URL: 'redis://r:6379' }).redisUrl, 'redis://r:6379');
  assert.equal(loadConfig({ REDIS_URL: 'redis://r:6379', ONAIR_REDIS_URL: 'redis://mine:6379' }).redisUrl, 'redis://mine:6379');
});

test('the store URL: ONAIR_DATABASE_URL, else DATABASE_URL; only postgres URLs', () => {
  assert.equal(loadConfig({}).databaseUrl, undefined);
  assert.equal(loadConfig({ DATABASE_URL: 'postgres://u:p@db:5432/onair' }).databaseUrl, 'postgres://u:p@db:5432/onair');
  assert.equal(loadConfig({ DATABASE_URL: 'postgres://a/x', ONAIR_DATABASE_URL: 'postgresql://b/y' }).databaseUrl, 'postgresql://b/y');
  assert.throws(
    () => loadConfig({ DATABASE_URL: 'mysql://db/onair' }),
    /ONAIR_DATABASE_URL \(databaseUrl\): a postgres:\/\/ or postgresql:\/\/ URL/,
  );
});

test('a ladder that is not JSON says what to write', () => {
  assert.throws(
    () => loadConfig({ ONAIR_LADDER: 'not json' }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(
        e.message,
        /^ONAIR_LADDER: not JSON; write a JSON array like \[\{"name":"720p","height":720,"fps":30,"videoKbps":2800\}\]$/,
      );
      return true;
    },
  );
  assert.throws(
    () => loadConfig({ ONAIR_LADDER: '["720p"]' }),
    /ONAIR_LADDER \(ladder\.0\): .*; write a JSON array like \[\{"name":"720p"/,
  );
});

test('ONAIR_ROLE takes a list of the roles `onair start` runs, `all` alone, and the message lists them', () => {
  assert.deepEqual(loadConfig({}).role, ['all']);
  for (const role of ['all', 'ingest', 'origin', 'edge', 'control']) assert.deepEqual(loadConfig({ ONAIR_ROLE: role }).role, [role]);
  assert.deepEqual(loadConfig({ ONAIR_ROLE: 'ingest, origin' }).role, ['ingest', 'origin']);
  assert.throws(() => loadConfig({ ONAIR_ROLE: 'bogus' }), /ONAIR_ROLE \(role\.0\): one of all, ingest, origin, edge, control/);
  assert.throws(() => loadConfig({ ONAIR_ROLE: 'all,edge' }), /ONAIR_ROLE \(role\): `all` runs every role; list it alone/);
  assert.throws(() => loadConfig({ ONAIR_ROLE: 'edge,edge' }), /ONAIR_ROLE \(role\): each role once/);
});

test('the part target must split the segment target into whole parts', () => {
  assert.throws(
    () => loadConfig({ ONAIR_PART_TARGET_SEC: '2', ONAIR_SEGMENT_TARGET_SEC: '1' }),
    /ONAIR_PART_TARGET_SEC \(partTargetSec\): 2 s must split ONAIR_SEGMENT_TARGET_SEC \(1 s\) into 2 or more whole parts; write e\.g\. 0\.5 or 0\.25/,
  );
  assert.throws(() => loadConfig({ ONAIR_PART_TARGET_SEC: '0.3' }), /0\.3 s must split .*\(2 s\).*write e\.g\. 1 or 0\.5/);
  assert.throws(() => loadConfig({ ONAIR_PART_TARGET_SEC: '2' }), /2 or more whole parts/);
  assert.equal(loadConfig({ ONAIR_SEGMENT_TARGET_SEC: '1', ONAIR_PART_TARGET_SEC: '0.25' }).partTargetSec, 0.25);
  assert.equal(loadConfig({ ONAIR_SEGMENT_TARGET_SEC: '3', ONAIR_PART_TARGET_SEC: '0.6', ONAIR_GOP_SEC: '3' }).segmentTargetSec, 3);
  // The GOP must be whole parts and split the segment into whole GOPs.
  assert.throws(
    () => loadConfig({ ONAIR_SEGMENT_TARGET_SEC: '3', ONAIR_PART_TARGET_SEC: '0.6' }),
    /1 s must be a whole number of ONAIR_PART_TARGET_SEC \(0\.6 s\).*write e\.g\. 3$/,
  );
  assert.throws(() => loadConfig({ ONAIR_GOP_SEC: '0.8' }), /0\.8 s must be a whole number/);
  assert.equal(loadConfig({ ONAIR_GOP_SEC: '2' }).gopSec, 2);
  const d = loadConfig({});
  assert.deepEqual([d.segmentTargetSec, d.partTargetSec, d.gopSec], [2, 0.2, 1], 'defaults: 2 s segments, 0.2 s parts, 1 s GOP');
  assert.equal(loadConfig({ ONAIR_SEGMENT_TARGET_SEC: '1' }).partTargetSec, 0.2);
});

test('two servers on one port are refused', () => {
  assert.throws(
    () => loadConfig({ ONAIR_HTTP_PORT: '9000', ONAIR_RTMP_PORT: '9000' }),
    /ONAIR_RTMP_PORT \(rtmpPort\): port 9000 is already ONAIR_HTTP_PORT/,
  );
  assert.throws(() => loadConfig({ ONAIR_ORIGIN_PORT: '1935' }), /ONAIR_ORIGIN_PORT \(originPort\): port 1935 is already ONAIR_RTMP_PORT/);
  assert.equal(loadConfig({ ONAIR_HTTP_PORT: '0', ONAIR_RTMP_PORT: '0' }).httpPort, 0);
});

test('ONAIR_WATCH_FRAME_ANCESTORS: a CSP source list, never a way to add directives', () => {
  assert.equal(loadConfig({}).watchFrameAncestors, '*');
  assert.equal(
    loadConfig({ ONAIR_WATCH_FRAME_ANCESTORS: "'self' https://news.example https://*.partner.example" }).watchFrameAncestors,
    "'self' https://news.example https://*.partner.example",
  );
  assert.throws(
    () => loadConfig({ ONAIR_WATCH_FRAME_ANCESTORS: "*; script-src 'unsafe-inline'" }),
    /ONAIR_WATCH_FRAME_ANCESTORS .*is not a CSP source; write \*/,
  );
  assert.throws(() => loadConfig({ ONAIR_WATCH_FRAME_ANCESTORS: "'none' https://a.example" }), /'none' must stand alone/);
});
