// Picks the recording storage from the configuration: S3 when ONAIR_STORAGE_URL says s3://, else local disk.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../config/schema.ts';
import { LocalStorage, type Storage } from './storage.ts';
import { parseS3Url, S3Storage } from './s3.ts';

export type { Storage, StoredObject, ObjectReader } from './storage.ts';

/** The storage ONAIR_STORAGE_URL names (`file:///dir`, `s3://bucket/prefix?...`), or `<dataDir>/recordings`. */
export function createStorage(config: Pick<Config, 'storageUrl' | 'dataDir'>): Storage {
  const url = config.storageUrl;
  if (url === undefined) return new LocalStorage(join(config.dataDir, 'recordings'));
  if (url.startsWith('file://')) return new LocalStorage(fileURLToPath(url));
  return new S3Storage(parseS3Url(url));
}
