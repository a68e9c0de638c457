// The S3 backend against a real S3 server: SeaweedFS on loopback (test/support/seaweedfs.ts). Skips, saying so, when
// no `weed` binary is installed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSeaweedS3, weedSkip, type SeaweedS3 } from '../../test/support/seaweedfs.ts';
import { readAll } from './storage.ts';
import { parseS3Url, S3Storage } from './s3.ts';

const skip = weedSkip();
let s3: SeaweedS3 | undefined;

before(async () => {
  if (skip) return;
  s3 = await startSeaweedS3();
  Object.assign(process.env, s3.env);
});

after(async () => {
  await s3?.stop();
});

test('S3 storage on SeaweedFS: put, streaming get, list (paginated) by prefix, delete, delete by prefix', { skip }, async () => {
  const storage = new S3Storage(parseS3Url(`s3://${s3!.bucket}/cluster/a?endpoint=${encodeURIComponent(s3!.endpoint)}`));
  try {
    await storage.put('ev1/100/720p/init-100.mp4', Buffer.from('init'));
    await storage.put('ev1/100/manifest.json', Buffer.from('{"v":1}'));
    await storage.put('ev1/100/manifest.json', Buffer.from('{"v":2}')); // replaced
    await storage.put('ev10/1/x', Buffer.from('other event'));
    const r = await storage.get('ev1/100/720p/init-100.mp4');
    assert.equal(r?.size, 4);
    r!.body.destroy();
    assert.equal((await readAll(storage, 'ev1/100/manifest.json'))?.toString(), '{"v":2}');
    assert.equal(await storage.get('ev1/100/nothing'), undefined, 'a missing key is not an error');
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

test('S3 storage: a bucket that does not exist rejects (the recorder then fails the recording with the message)', { skip }, async () => {
  const storage = new S3Storage(parseS3Url(`s3://no-such-bucket-here/x?endpoint=${encodeURIComponent(s3!.endpoint)}`));
  try {
    await assert.rejects(storage.put('k', Buffer.from('x')), (err: Error) => err.message.length > 0);
  } finally {
    storage.close();
  }
});
