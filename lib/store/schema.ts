// Table types of the store, as Kysely sees them.
import type { Generated } from 'kysely';

/** Lifecycle of an event: `idle` (created), `live` (publishing), `offline` (publisher gone), `ended`. */
export type EventStatus = 'idle' | 'live' | 'offline' | 'ended';

export interface EventsTable {
  id: string;
  slug: string;
  title: string;
  description: string;
  status: EventStatus;
  created_at: number;
  updated_at: number;
  live_since: number | null;
}

export interface StreamKeysTable {
  id: Generated<number>;
  event_id: string;
  /** SHA-256 of the key; the key itself is never stored. */
  key_hash: string;
  created_at: number;
  revoked_at: number | null;
}

export interface Database {
  events: EventsTable;
  stream_keys: StreamKeysTable;
}
