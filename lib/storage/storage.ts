// Object storage for recordings: a small key/value interface (put, streaming get, list, delete) with a local-disk
// backend (the default, under the data dir) and an S3 one (s3.ts). Keys are relative paths of safe characters.
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';

/** An object's key and size, as list() reports them. */
export interface StoredObject {
  key: string;
  size: number;
}

/** A stored object opened for reading. */
export interface ObjectReader {
  body: Readable;
  size: number;
}

/** Where recordings live. Every method rejects on a storage failure; a missing object is not a failure. */
export interface Storage {
  /** `local` or `s3`, for logs and metrics. */
  readonly kind: 'local' | 's3';
  /** A description without secrets (directory, or bucket and endpoint). */
  readonly where: string;
  /** Writes (or replaces) an object; when it resolves, the object is durable. */
  put(key: string, body: Buffer): Promise<void>;
  /** Opens an object for streaming; undefined when there is none. */
  get(key: string): Promise<ObjectReader | undefined>;
  /** Every object whose key starts with `prefix`, in key order. */
  list(prefix: string): Promise<StoredObject[]>;
  /** Deletes one object (no error when there is none). */
  delete(key: string): Promise<void>;
  /** Deletes every object under `prefix`; resolves to how many there were. */
  deletePrefix(prefix: string): Promise<number>;
}

const KEY = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;

/** Throws unless `key` is a relative path of [A-Za-z0-9_.-] segments, none of them `.` or `..`. */
export function checkKey(key: string): void {
  if (key.length > 512 || !KEY.test(key) || key.split('/').some((s) => s === '.' || s === '..')) {
    throw new Error(`bad storage key ${JSON.stringify(key.slice(0, 100))}`);
  }
}

/** Reads a whole object into memory (small objects: manifests); undefined when there is none. */
export async function readAll(storage: Storage, key: string): Promise<Buffer | undefined> {
  const r = await storage.get(key);
  if (!r) return undefined;
  const chunks: Buffer[] = [];
  for await (const c of r.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Local-disk storage under `root`: one file per key, written to a temporary name, flushed and renamed into place. */
export class LocalStorage implements Storage {
  readonly kind = 'local';
  #tmp = 0;

  constructor(readonly root: string) {}

  get where(): string {
    return this.root;
  }

  #path(key: string): string {
    checkKey(key);
    return join(this.root, ...key.split('/'));
  }

  async put(key: string, body: Buffer): Promise<void> {
    const path = this.#path(key);
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.tmp-${process.pid}-${++this.#tmp}`;
    const f = await open(tmp, 'w');
    try {
      await f.writeFile(body);
      await f.sync();
    } finally {
      await f.close();
    }
    try {
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
  }

  async get(key: string): Promise<ObjectReader | undefined> {
    const path = this.#path(key);
    try {
      const s = await stat(path);
      if (!s.isFile()) return undefined;
      return { body: createReadStream(path), size: s.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    // Walk the deepest directory the prefix names, then filter by the full prefix.
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash === -1 ? '' : prefix.slice(0, slash);
    if (dirKey !== '') checkKey(dirKey);
    const out: StoredObject[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const e of entries) {
        const path = join(dir, e.name);
        const key = relative(this.root, path).split(sep).join('/');
        if (e.isDirectory()) {
          if (key.startsWith(prefix) || prefix.startsWith(key + '/')) await walk(path);
        } else if (e.isFile() && key.startsWith(prefix) && !e.name.includes('.tmp-')) {
          out.push({ key, size: (await stat(path)).size });
        }
      }
    };
    await walk(dirKey === '' ? this.root : join(this.root, ...dirKey.split('/')));
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    await rm(this.#path(key), { force: true });
  }

  async deletePrefix(prefix: string): Promise<number> {
    const objects = await this.list(prefix);
    for (const o of objects) await this.delete(o.key);
    // A prefix that names a directory: remove it (and its now empty subdirectories).
    if (prefix.endsWith('/') && prefix.length > 1) await rm(this.#path(prefix.slice(0, -1)), { recursive: true, force: true });
    return objects.length;
  }
}
