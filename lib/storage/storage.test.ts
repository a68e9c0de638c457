import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalStorage, checkKey, readAll } from './storage.ts';
import { createStorage } from './index.ts';
import { parseS3Url, S3Storage } from './s3.ts';

function tempStorage(): { storage: LocalStorage; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'onair-storage-'));
  return { storage: new LocalStorage(dir), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test('local storage: put, streaming get, list by prefix, delete, delete by prefix', async () => {
  const { storage, cleanup } = tempStorage();
  try {
    await storage.put('ev1/100/720p/seg-1.m4s', Buffer.from('one'));
    await storage.put('ev1/100/720p/seg-2.m4s', Buffer.from('two!'));
    await storage.put('ev1/100/manifest.json', Buffer.from('{}'));
    await storage.put('ev10/5/x', Buffer.from('other event'));
    const r = await storage.get('ev1/100/720p/seg-2.m4s');
    assert.equal(r?.size, 4);
    const chunks: Buffer[] = [];
    for await (const c of r!.body) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'two!');
    assert.equal(await storage.get('ev1/100/720p/seg-3.m4s'), undefined);
    assert.deepEqual(
      (await storage.list('ev1/')).map((o) => [o.key, o.size]),
      [
        ['ev1/100/720p/seg-1.m4s', 3],
        ['ev1/100/720p/seg-2.m4s', 4],
        ['ev1/100/manifest.json', 2],
      ],
    );
    assert.deepEqual(
      (await storage.list('ev1/100/720p/seg-1')).map((o) => o.key),
      ['ev1/100/720p/seg-1.m4s'],
    );
    assert.deepEqual(await storage.list('nothing/'), []);
    // Replacing is atomic (temporary file renamed): no temporary file is left or listed.
    await storage.put('ev1/100/manifest.json', Buffer.from('{"v":2}'));
    assert.equal((await readAll(storage, 'ev1/100/manifest.json'))?.toString(), '{"v":2}');
    assert.ok(!readdirSync(join(storage.root, 'ev1', '100')).some((n) => n.includes('.tmp-')));
    await storage.delete('ev1/100/720p/seg-1.m4s');
    await storage.delete('ev1/100/720p/seg-1.m4s'); // absent: no error
    assert.equal(await storage.deletePrefix('ev1/100/'), 2);
    assert.deepEqual(
      (await storage.list('ev1/')).map((o) => o.key),
      [],
    );
    // A prefix is a string prefix, as in S3: `ev1` also matches `ev10/`.
    assert.deepEqual(
      (await storage.list('ev1')).map((o) => o.key),
      ['ev10/5/x'],
    );
    assert.deepEqual(
      (await storage.list('ev10/')).map((o) => o.key),
      ['ev10/5/x'],
    );
  } finally {
    cleanup();
  }
});

test('storage keys cannot leave the root', async () => {
  const { storage, cleanup } = tempStorage();
  try {
    for (const bad of ['../x', 'a/../../b', '/etc/passwd', 'a//b', 'a/./b', '', 'a\\b', 'a b', 'é']) {
      assert.throws(() => checkKey(bad), /bad storage key/, bad);
      await assert.rejects(storage.put(bad, Buffer.from('x')), /bad storage key/, bad);
    }
  } finally {
    cleanup();
  }
});

test('a local store that cannot write rejects (and says why)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'onair-storage-'));
  try {
    writeFileSync(join(dir, 'file'), 'not a directory');
    const storage = new LocalStorage(join(dir, 'file'));
    await assert.rejects(storage.put('a/b', Buffer.from('x')), /ENOTDIR|EEXIST/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ONAIR_STORAGE_URL: local by default, file:// or s3:// with endpoint and region, never credentials', () => {
  const local = createStorage({ dataDir: '/srv/onair', storageUrl: undefined });
  assert.equal(local.kind, 'local');
  assert.equal(local.where, '/srv/onair/recordings');
  assert.equal(createStorage({ dataDir: '/x', storageUrl: 'file:///mnt/rec' }).where, '/mnt/rec');
  assert.deepEqual(parseS3Url('s3://media-bucket/onair/rec?endpoint=http://127.0.0.1:8333&region=eu-west-1'), {
    bucket: 'media-bucket',
    prefix: 'onair/rec',
    endpoint: 'http://127.0.0.1:8333',
    region: 'eu-west-1',
  });
  assert.deepEqual(parseS3Url('s3://media-bucket'), { bucket: 'media-bucket', prefix: '', region: 'us-east-1' });
  assert.throws(() => parseS3Url('s3://key:secret@bucket/x'), /credentials do not belong in the URL/);
  assert.throws(() => parseS3Url('s3://Bad_Bucket/x'), /bad bucket name/);
  assert.throws(() => parseS3Url('s3://bucket/x?endpoint=ftp://h'), /endpoint must be an http/);
  assert.throws(() => parseS3Url('s3://bucket/x?foo=1'), /unknown parameter "foo"/);
  const s3 = createStorage({ dataDir: '/x', storageUrl: 's3://media-bucket/p?endpoint=http://127.0.0.1:1' });
  assert.ok(s3 instanceof S3Storage);
  assert.equal(s3.where, 's3://media-bucket/p at http://127.0.0.1:1');
  s3.close();
});
