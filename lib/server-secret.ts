// The server secret: configured (the same on every node in cluster mode), else generated once into the data dir.
// Viewer tokens are signed with it; other keys (the stream-key seal) are derived from it.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The secret: `configured` (hex or any string ≥ 32 chars, shared by every node in cluster mode), else one
 * generated once and kept in `<dataDir>/viewer-token.secret` (mode 0600) so it survives restarts.
 */
export function loadServerSecret(dataDir: string, configured?: string): Buffer {
  if (configured !== undefined && configured !== '') {
    if (configured.length < 32) throw new RangeError('viewerTokenSecret must be at least 32 characters');
    return Buffer.from(configured, 'utf8');
  }
  const file = join(dataDir, 'viewer-token.secret');
  if (existsSync(file)) {
    const hex = readFileSync(file, 'utf8').trim();
    if (/^[0-9a-f]{64,}$/.test(hex)) return Buffer.from(hex, 'hex');
  }
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32);
  writeFileSync(file, secret.toString('hex') + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return secret;
}
