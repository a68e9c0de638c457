// Operators (console users): creation, scrypt password hashing and verification, listing, disabling.
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { Db } from '../lib/store/db.ts';
import type { OperatorRole, OperatorsTable } from '../lib/store/schema.ts';

/** Operator roles, most privileged first. */
export const operatorRoles = ['admin', 'moderator'] as const satisfies readonly OperatorRole[];

/** An operator as the API shows it (never the password hash). */
export interface Operator {
  id: string;
  email: string;
  role: OperatorRole;
  createdAt: number;
  disabled: boolean;
}

/** Thrown when creating an operator whose e-mail is taken. */
export class OperatorExistsError extends Error {
  override name = 'OperatorExistsError';
}

/** scrypt cost parameters (N=2^15, r=8, p=1: ~32 MiB, tens of ms per hash). */
const SCRYPT = { N: 1 << 15, r: 8, p: 1, keyLen: 64 };
/** Minimum password length. */
export const MIN_PASSWORD_LENGTH = 10;

function scrypt(password: string, salt: Buffer, keyLen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password.normalize('NFKC'), salt, keyLen, { ...opts, maxmem: 256 * opts.N! * opts.r! }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/** Hashes a password as `scrypt$N$r$p$salt$hash` (base64url parts). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, SCRYPT.keyLen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p });
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** Checks a password against a hash made by hashPassword, in constant time. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, saltB64, keyB64] = stored.split('$');
  if (alg !== 'scrypt' || !n || !r || !p || !saltB64 || !keyB64) return false;
  const expected = Buffer.from(keyB64, 'base64url');
  const key = await scrypt(password, Buffer.from(saltB64, 'base64url'), expected.length, { N: Number(n), r: Number(r), p: Number(p) });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** Normalizes an e-mail address for lookups. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

function toOperator(row: OperatorsTable): Operator {
  return { id: row.id, email: row.email, role: row.role, createdAt: Number(row.created_at), disabled: row.disabled_at !== null };
}

/** Operators repository over the store. */
export class OperatorService {
  /** A hash checked when the e-mail is unknown, so that timing does not reveal which e-mails exist. */
  #dummyHash: Promise<string> | undefined;

  constructor(private readonly db: Db) {}

  /** Creates an operator; throws RangeError on a bad e-mail/password and OperatorExistsError on a taken e-mail. */
  async create(input: { email: string; role: OperatorRole; password: string }): Promise<Operator> {
    const email = normalizeEmail(input.email);
    if (!/^[^\s@]+@[^\s@]+$/.test(email) || email.length > 254) throw new RangeError('email is not a valid address');
    if (!operatorRoles.includes(input.role)) throw new RangeError(`role must be one of ${operatorRoles.join(', ')}`);
    if (input.password.length < MIN_PASSWORD_LENGTH) throw new RangeError(`password must be at least ${MIN_PASSWORD_LENGTH} characters`);
    if (input.password.length > 1024) throw new RangeError('password must be at most 1024 characters');
    if (await this.db.selectFrom('operators').select('id').where('email', '=', email).executeTakeFirst()) {
      throw new OperatorExistsError(`an operator with e-mail ${email} exists`);
    }
    const row: OperatorsTable = {
      id: 'op_' + randomBytes(9).toString('base64url'),
      email,
      role: input.role,
      password_hash: await hashPassword(input.password),
      created_at: Date.now(),
      disabled_at: null,
    };
    await this.db.insertInto('operators').values(row).execute();
    return toOperator(row);
  }

  /** The operator with these credentials, or undefined (unknown e-mail, wrong password or disabled). */
  async verify(email: string, password: string): Promise<Operator | undefined> {
    const row = await this.db.selectFrom('operators').selectAll().where('email', '=', normalizeEmail(email)).executeTakeFirst();
    if (!row) {
      this.#dummyHash ??= hashPassword(randomBytes(16).toString('hex'));
      await verifyPassword(password, await this.#dummyHash);
      return undefined;
    }
    const ok = await verifyPassword(password, row.password_hash);
    return ok && row.disabled_at === null ? toOperator(row) : undefined;
  }

  /** An operator by id (disabled ones included). */
  async byId(id: string): Promise<Operator | undefined> {
    const row = await this.db.selectFrom('operators').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toOperator(row);
  }

  /** Every operator, oldest first. */
  async list(): Promise<Operator[]> {
    return (await this.db.selectFrom('operators').selectAll().orderBy('created_at', 'asc').execute()).map(toOperator);
  }

  /** Disables an operator and ends its sessions and tokens; false if unknown. */
  async disable(id: string): Promise<boolean> {
    const now = Date.now();
    return this.db.transaction().execute(async (tx) => {
      const r = await tx
        .updateTable('operators')
        .set({ disabled_at: now })
        .where('id', '=', id)
        .where('disabled_at', 'is', null)
        .executeTakeFirst();
      await tx.deleteFrom('operator_sessions').where('operator_id', '=', id).execute();
      await tx.updateTable('api_tokens').set({ revoked_at: now }).where('operator_id', '=', id).where('revoked_at', 'is', null).execute();
      return Number(r.numUpdatedRows) > 0;
    });
  }
}
