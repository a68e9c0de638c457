// S3-compatible storage (AWS S3, SeaweedFS, ...) through @aws-sdk/client-s3.
//
// ONAIR_STORAGE_URL = s3://<bucket>[/<prefix>][?endpoint=<http(s) URL>&region=<region>]: keys are stored under
// <prefix>/, path-style addressing (what non-AWS servers expect), region default us-east-1. Credentials come from
// the SDK's usual chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, instance roles): never from the URL.
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { checkKey, type ObjectReader, type Storage, type StoredObject } from './storage.ts';

/** What an s3:// URL says. */
export interface S3Location {
  bucket: string;
  /** Key prefix without leading or trailing slash ('' for the bucket's root). */
  prefix: string;
  endpoint?: string;
  region: string;
}

/** Parses `s3://bucket/prefix?endpoint=...&region=...`; throws a message naming what is wrong. */
export function parseS3Url(url: string): S3Location {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`ONAIR_STORAGE_URL: not a URL`);
  }
  if (u.protocol !== 's3:') throw new Error('ONAIR_STORAGE_URL: expected s3://bucket/prefix');
  if (u.username || u.password)
    throw new Error('ONAIR_STORAGE_URL: credentials do not belong in the URL; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY');
  const bucket = u.hostname;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new Error(`ONAIR_STORAGE_URL: bad bucket name ${JSON.stringify(bucket)}`);
  const prefix = decodeURIComponent(u.pathname).replace(/^\/+|\/+$/g, '');
  if (prefix !== '') checkKey(prefix);
  const endpoint = u.searchParams.get('endpoint') ?? undefined;
  if (endpoint !== undefined && !/^https?:\/\//.test(endpoint)) throw new Error('ONAIR_STORAGE_URL: endpoint must be an http(s) URL');
  for (const k of u.searchParams.keys()) {
    if (k !== 'endpoint' && k !== 'region') throw new Error(`ONAIR_STORAGE_URL: unknown parameter ${JSON.stringify(k)} (endpoint, region)`);
  }
  return { bucket, prefix, ...(endpoint ? { endpoint } : {}), region: u.searchParams.get('region') ?? 'us-east-1' };
}

function notFound(err: unknown): boolean {
  return err instanceof S3ServiceException && (err.name === 'NoSuchKey' || err.name === 'NotFound' || err.$metadata.httpStatusCode === 404);
}

/** Storage in an S3 bucket under a prefix. */
export class S3Storage implements Storage {
  readonly kind = 's3';
  readonly #client: S3Client;

  constructor(
    readonly location: S3Location,
    client?: S3Client,
  ) {
    this.#client =
      client ??
      new S3Client({
        region: location.region,
        forcePathStyle: true,
        maxAttempts: 2,
        ...(location.endpoint ? { endpoint: location.endpoint } : {}),
      });
  }

  get where(): string {
    const { bucket, prefix, endpoint } = this.location;
    return `s3://${bucket}/${prefix}${endpoint ? ` at ${endpoint}` : ''}`;
  }

  #key(key: string): string {
    checkKey(key);
    return this.location.prefix ? `${this.location.prefix}/${key}` : key;
  }

  async put(key: string, body: Buffer): Promise<void> {
    await this.#client.send(
      new PutObjectCommand({ Bucket: this.location.bucket, Key: this.#key(key), Body: body, ContentLength: body.length }),
    );
  }

  async get(key: string): Promise<ObjectReader | undefined> {
    try {
      const r = await this.#client.send(new GetObjectCommand({ Bucket: this.location.bucket, Key: this.#key(key) }));
      if (!(r.Body instanceof Readable)) throw new Error('S3 GetObject returned no stream');
      return { body: r.Body, size: r.ContentLength ?? 0 };
    } catch (err) {
      if (notFound(err)) return undefined;
      throw err;
    }
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const base = this.location.prefix ? this.location.prefix + '/' : '';
    const out: StoredObject[] = [];
    let token: string | undefined;
    do {
      const r = await this.#client.send(
        new ListObjectsV2Command({ Bucket: this.location.bucket, Prefix: base + prefix, ...(token ? { ContinuationToken: token } : {}) }),
      );
      for (const o of r.Contents ?? []) if (o.Key) out.push({ key: o.Key.slice(base.length), size: o.Size ?? 0 });
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    await this.#client.send(new DeleteObjectCommand({ Bucket: this.location.bucket, Key: this.#key(key) }));
  }

  async deletePrefix(prefix: string): Promise<number> {
    const objects = await this.list(prefix);
    for (let i = 0; i < objects.length; i += 1000) {
      const batch = objects.slice(i, i + 1000).map((o) => ({ Key: this.#key(o.key) }));
      const r = await this.#client.send(
        new DeleteObjectsCommand({ Bucket: this.location.bucket, Delete: { Objects: batch, Quiet: true } }),
      );
      const failed = r.Errors?.[0];
      if (failed) throw new Error(`S3 DeleteObjects: ${failed.Key}: ${failed.Code ?? ''} ${failed.Message ?? ''}`.trim());
    }
    return objects.length;
  }

  close(): void {
    this.#client.destroy();
  }
}
