// Test helper: SeaweedFS (Apache-2.0) as a real S3 server on loopback, with one bucket. `findWeed()` looks for the
// binary in $ONAIR_TEST_WEED, $(go env GOPATH)/bin/weed, then `weed` on the PATH; tests skip when there is none.
// Install: `scripts/install-prereqs.sh --seaweedfs` (pinned; built from the module source, as `go install` refuses it).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort } from './free-port.ts';
import { makeTempDir } from './temp-dir.ts';
import { waitFor } from './wait-for.ts';

/** Path of a `weed` binary, or undefined. */
export function findWeed(): string | undefined {
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

/** The reason a SeaweedFS test skips, or false when it can run. */
export const weedSkip = (): string | false =>
  findWeed() === undefined ? 'SeaweedFS `weed` not installed (see test/support/seaweedfs.ts)' : false;

/** A running SeaweedFS with its S3 endpoint and a bucket. */
export interface SeaweedS3 {
  endpoint: string;
  bucket: string;
  /** Credentials it accepts (it runs without identities: any pair). */
  env: { AWS_ACCESS_KEY_ID: string; AWS_SECRET_ACCESS_KEY: string };
  stop(): Promise<void>;
}

/** Starts `weed server -s3` on loopback ports with its data in a temp dir, and makes `bucket`. */
export async function startSeaweedS3(bucket = 'onair-rec'): Promise<SeaweedS3> {
  const weed = findWeed();
  if (!weed) throw new Error('no weed binary');
  const dir = makeTempDir('seaweedfs');
  const [master, volume, filer, s3] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const env = { AWS_ACCESS_KEY_ID: 'onair-test', AWS_SECRET_ACCESS_KEY: 'onair-test-secret' };
  const child = spawn(
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
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
  const exited = new Promise((r) => child.once('close', r));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    dir.remove();
  };
  const endpoint = `http://127.0.0.1:${s3}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
  });
  try {
    await waitFor(
      'SeaweedFS S3 up and the bucket made',
      async () => {
        if (child.exitCode !== null) throw new Error(`weed exited: ${log}`);
        try {
          await client.send(new CreateBucketCommand({ Bucket: bucket }));
          return true;
        } catch (err) {
          const name = (err as Error).name;
          return name === 'BucketAlreadyOwnedByYou' || name === 'BucketAlreadyExists' ? true : undefined;
        }
      },
      60_000,
      500,
    );
  } catch (err) {
    await stop();
    throw err;
  } finally {
    client.destroy();
  }
  return { endpoint, bucket, env, stop };
}
