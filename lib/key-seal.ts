// Sealing of stream keys that wait for their one reveal: AES-256-GCM under a key derived (HKDF-SHA256) from the
// server secret, bound to the key's hash so a sealed value cannot be moved to another row. The store never holds
// a plain key: before its reveal only this sealed form (and the hash), after it only the hash.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/** Seals and opens secrets with a server key. */
export interface KeySealer {
  /** `v1.<base64url(iv | tag | ciphertext)>` of `plain`, authenticated together with `bind`. */
  seal(plain: string, bind: string): string;
  /** The plain text, or undefined when `sealed` is malformed, tampered with, bound to something else or sealed under another secret. */
  open(sealed: string, bind: string): string | undefined;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** A sealer whose key is derived from `secret` (the server secret, the same on every node in cluster mode). */
export function createKeySealer(secret: Buffer): KeySealer {
  if (secret.length < 16) throw new RangeError('the sealing secret must be at least 16 bytes');
  const key = Buffer.from(hkdfSync('sha256', secret, Buffer.from('onair'), Buffer.from('stream-key reveal seal v1'), 32));
  return {
    seal(plain, bind) {
      const iv = randomBytes(IV_BYTES);
      const c = createCipheriv('aes-256-gcm', key, iv);
      c.setAAD(Buffer.from(bind, 'utf8'));
      const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
      return 'v1.' + Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64url');
    },
    open(sealed, bind) {
      if (!sealed.startsWith('v1.')) return undefined;
      const raw = Buffer.from(sealed.slice(3), 'base64url');
      if (raw.length <= IV_BYTES + TAG_BYTES) return undefined;
      try {
        const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
        d.setAAD(Buffer.from(bind, 'utf8'));
        d.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
        return Buffer.concat([d.update(raw.subarray(IV_BYTES + TAG_BYTES)), d.final()]).toString('utf8');
      } catch {
        return undefined;
      }
    },
  };
}
