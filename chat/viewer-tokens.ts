// Viewer identity: a display name becomes an HMAC-signed token (viewer id, name, role, expiry) that the gateway verifies.
import { createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { loadServerSecret } from '../lib/server-secret.ts';

/** What a token lets its holder do: viewers chat; moderators and admins also moderate. */
export type ViewerRole = 'viewer' | 'moderator' | 'admin';

/** Every role, for validation. */
export const viewerRoles: readonly ViewerRole[] = ['viewer', 'moderator', 'admin'];

/** A verified viewer. */
export interface ViewerIdentity {
  /** Stable id (`v_…`), what bans and likes refer to. */
  id: string;
  /** Display name with its suffix (`Alice#4821`). */
  name: string;
  role: ViewerRole;
  /** Expiry, ms since the epoch. */
  exp: number;
}

/** Thrown for a display name that cannot be used; the message says why. */
export class DisplayNameError extends RangeError {
  override name = 'DisplayNameError';
}

/** Trims, strips control characters, collapses spaces and checks a display name (2–24 letters, digits, space, `_ - .`). */
export function validateDisplayName(raw: unknown): string {
  if (typeof raw !== 'string') throw new DisplayNameError('displayName must be a string');
  const name = raw
    .normalize('NFC')
    .replace(/\p{Cc}|\p{Cf}/gu, '')
    .replace(/\s+/gu, ' ')
    .trim();
  const length = [...name].length;
  if (length < 2 || length > 24) throw new DisplayNameError('displayName must be 2–24 characters');
  if (!/^[\p{L}\p{N}][\p{L}\p{N} _.-]*$/u.test(name)) {
    throw new DisplayNameError('displayName may hold letters, digits, spaces, "_", "-" and "." and must start with a letter or digit');
  }
  return name;
}

/** Signs and verifies viewer tokens: `base64url(payload).base64url(HMAC-SHA256(payload))`. */
export class ViewerTokens {
  #secret?: Buffer;
  readonly #loadSecret?: () => Buffer;

  /** `secret` as bytes, or a function that reads it (called once, at load() or the first token): building reads nothing. */
  constructor(
    secret: Buffer | (() => Buffer),
    private readonly ttlSec: number,
    private readonly now: () => number = Date.now,
  ) {
    if (Buffer.isBuffer(secret)) this.#secret = checkSecret(secret);
    else this.#loadSecret = secret;
  }

  /** Reads the secret now (the chat role's start), so a missing or short one stops start-up, not the first viewer. */
  load(): void {
    this.#key();
  }

  /** Issues a token for a validated display name; a 4-digit suffix keeps names unique-ish. */
  issue(input: { displayName: string; role?: ViewerRole }): { token: string; viewer: ViewerIdentity } {
    const base = validateDisplayName(input.displayName);
    const viewer: ViewerIdentity = {
      id: 'v_' + randomBytes(12).toString('base64url'),
      name: `${base}#${String(randomInt(0, 10_000)).padStart(4, '0')}`,
      role: input.role ?? 'viewer',
      exp: this.now() + this.ttlSec * 1000,
    };
    return { token: this.sign(viewer), viewer };
  }

  /** Signs an identity as it is (for tests and the operator side). */
  sign(viewer: ViewerIdentity): string {
    const payload = Buffer.from(JSON.stringify({ v: 1, sub: viewer.id, name: viewer.name, role: viewer.role, exp: viewer.exp })).toString(
      'base64url',
    );
    return `${payload}.${this.mac(payload)}`;
  }

  /** The identity in `token`, or undefined when it is malformed, forged or expired. */
  verify(token: unknown): ViewerIdentity | undefined {
    if (typeof token !== 'string' || token.length > 1024) return undefined;
    const dot = token.indexOf('.');
    if (dot <= 0 || dot !== token.lastIndexOf('.')) return undefined;
    const payload = token.slice(0, dot);
    // Compare the MAC as text: decoding first would accept other spellings of it (base64url decoders ignore the
    // unused low bits of the last character and skip characters outside the alphabet).
    const given = Buffer.from(token.slice(dot + 1), 'utf8');
    const expected = Buffer.from(this.mac(payload), 'utf8');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    let p: { v?: unknown; sub?: unknown; name?: unknown; role?: unknown; exp?: unknown };
    try {
      p = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof p;
    } catch {
      return undefined;
    }
    if (p.v !== 1 || typeof p.sub !== 'string' || typeof p.name !== 'string' || typeof p.exp !== 'number') return undefined;
    if (!viewerRoles.includes(p.role as ViewerRole) || p.exp <= this.now()) return undefined;
    return { id: p.sub, name: p.name, role: p.role as ViewerRole, exp: p.exp };
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.#key()).update(payload).digest('base64url');
  }

  #key(): Buffer {
    this.#secret ??= checkSecret(this.#loadSecret!());
    return this.#secret;
  }
}

function checkSecret(secret: Buffer): Buffer {
  if (secret.length < 32) throw new RangeError('viewer token secret must be at least 32 bytes');
  return secret;
}

/** The viewer-token secret (lib/server-secret.ts): configured, else generated once into the data dir. */
export const loadTokenSecret = loadServerSecret;
