// The recording end-to-end tests (recording.test.ts) with the recordings in S3: a SeaweedFS server on loopback.
// Skips, saying so, when no `weed` binary is installed (test/support/seaweedfs.ts).
import { test } from 'node:test';
import { weedSkip } from '../support/seaweedfs.ts';

const skip = weedSkip();
if (skip) test('recording to S3 (SeaweedFS)', { skip }, () => {});
else {
  process.env.E2E_RECORDING_S3 = '1';
  await import('./recording.test.ts');
}
