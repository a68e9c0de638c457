// The S3 backend against a real S3 server: SeaweedFS (Apache-2.0), started on loopback for this file. Skips (saying
// so) when no `weed` binary is found: $ONAIR_TEST_WEED, $(go env GOPATH)/bin/weed, or `weed` on the PATH. Install:
//   go mod download github.com/seaweedfs/seaweedfs@<pinned> and `go build -o $(go env GOPATH)/bin/weed ./weed` in it
//   (`go install …/weed@<version>` refuses the module: its go.mod has replace directives).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from '../../test/support/free-port.ts';
import { makeTempDir, type TempDir } from '../../test/support/temp-dir.ts';
import { waitFor } from '../../test/support/wait-for.ts';
import { readAll } from './storage.ts';
import { parseS3Url, S3Storage } from './s3.ts';

function findWeed(): string | undefined {
  if (process.env.ONAIR_TEST_WEED) return process.env.ONAIR_TEST_WEED;
  try {
    const gopath = execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8', timeout: 10_000 }).trim();
    if (gopath && existsSync(join(gopath, 'bin', 'weed'))) return join(gopath, 'bin', 'weed');
  } catch {
    // no Go toolchain
  }
  try {
    execFileSync('weed', ['version'], { stdio: 'ignore', timeout: 10_000 });
    return 'weed';
  } catch {
    return undefined;
  }
}

const weed = findWeed();
const skip = weed === undefined ? 'SeaweedFS `weed` not installed (see the header of this file)' : false;
let child: ChildProcess | undefined;
let dir: TempDir | undefined;
let endpoint = '';
let log = '';

before(async () => {
  if (!weed) return;
  dir = makeTempDir('seaweedfs');
  const [master, volume, filer, s3] = [await freePort(), await freePort(), await freePort(), await freePort()];
  process.env.AWS_ACCESS_KEY_ID = 'onair-test';
  process.env.AWS_SECRET_ACCESS_KEY = 'onair-test-secret';
  child = spawn(
    weed,
    [
      'server',
      `-dir=${dir.path}`,
      '-ip=127.0.0.1',
      '-ip.bind=127.0.0.1',
      `-master.port=${master}`,
      `-volume.port=${volume}`,
      '-volume.max=5',
      '-master.volumeSizeLimitMB=64',
      '-filer',
      `-filer.port=${filer}`,
      '-s3',
      `-s3.port=${s3}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
  endpoint = `http://127.0.0.1:${s3}`;
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true });
  await waitFor(
    'SeaweedFS S3 up and the bucket made',
    async () => {
      if (child!.exitCode !== null) throw new Error(`weed exited: ${log}`);
      try {
        await client.send(new CreateBucketCommand({ Bucket: 'onair-rec' }));
        return true;
      } catch (err) {
        const name = (err as Error).name;
        return name === 'BucketAlreadyOwnedByYou' || name === 'BucketAlreadyExists' ? true : undefined;
      }
    },
    60_000,
    500,
  );
  client.destroy();
});

after(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('close', r));
    child.kill('SIGTERM');
    const t = setTimeout(() => child!.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
  dir?.remove();
});

test('S3 storage on SeaweedFS: put, streaming get, list (paginated) by prefix, delete, delete by prefix', { skip }, async () => {
  const storage = new S3Storage(parseS3Url(`s3://onair-rec/cluster/a?endpoint=${encodeURIComponent(endpoint)}`));
  try {
    await storage.put('ev1/100/720p/init-100.mp4', Buffer.from('init'));
    await storage.put('ev1/100/manifest.json', Buffer.from('{"v":1}'));
    await storage.put('ev1/100/manifest.json', Buffer.from('{"v":2}')); // replaced
    await storage.put('ev10/1/x', Buffer.from('other event'));
    const r = await storage.get('ev1/100/720p/init-100.mp4');
    assert.equal(r?.size, 4);
    assert.equal((await readAll(storage, 'ev1/100/manifest.json'))?.toString(), '{"v":2}');
    assert.equal(await storage.get('ev1/100/nothing'), undefined, 'a missing key is not an error');
    r!.body.destroy();
    // More keys than one ListObjectsV2 page (1000).
    const keys = Array.from({ length: 1010 }, (_, i) => `ev1/100/720p/seg-${1000 + i}.m4s`);
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => storage.put(k, Buffer.from(k))));
    const listed = await storage.list('ev1/');
    assert.equal(listed.length, 1012);
    assert.equal(listed[0]!.key, 'ev1/100/720p/init-100.mp4', 'keys are relative to the URL prefix, in order');
    assert.deepEqual(
      (await storage.list('ev10/')).map((o) => o.key),
      ['ev10/1/x'],
    );
    await storage.delete('ev1/100/720p/init-100.mp4');
    await storage.delete('ev1/100/720p/init-100.mp4'); // absent: no error
    assert.equal(await storage.deletePrefix('ev1/'), 1011);
    assert.deepEqual(await storage.list('ev1/'), []);
    assert.equal((await storage.list('ev10/')).length, 1);
  } finally {
    storage.close();
  }
});

test('S3 storage: a wrong endpoint rejects with the reason (the recorder then fails the recording)', { skip }, async () => {
  const storage = new S3Storage(parseS3Url(`s3://no-such-bucket-here/x?endpoint=${encodeURIComponent(endpoint)}`));
  try {
    await assert.rejects(storage.put('k', Buffer.from('x')), /bucket/i);
  } finally {
    storage.close();
  }
});
