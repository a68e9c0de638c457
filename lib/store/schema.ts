// Table types of the store, as Kysely sees them.
import type { Generated } from 'kysely';

/** Lifecycle of an event: `idle` (created), `live` (publishing), `offline` (publisher gone), `ended`. */
export type EventStatus = 'idle' | 'live' | 'offline' | 'ended';

/** How an event is served: `low` as LL-HLS (parts, preload hints, blocking reload), `standard` as plain HLS. */
export type LatencyMode = 'low' | 'standard';

/** Which renditions an event gets (origin/ladder.ts planForPreset). */
export type LadderPreset = 'standard' | 'passthrough' | 'audio' | 'custom';

export interface EventsTable {
  id: string;
  slug: string;
  title: string;
  description: string;
  status: EventStatus;
  created_at: number;
  updated_at: number;
  live_since: number | null;
  /** Migration 0002; defaults to `low`. */
  latency_mode: LatencyMode;
  /** Migration 0004: planned start (ms since epoch), shown to viewers before going live. */
  scheduled_start: number | null;
  /** Migration 0004: `public` events are listed; `unlisted` ones are reachable by URL only. */
  visibility: EventVisibility;
  /** Migration 0004: when the event was ended by an operator. */
  ended_at: number | null;
  /** Migration 0007: record this event (1), do not (0), or follow ONAIR_RECORDING (null). */
  recording: number | null;
  /** Migration 0009: DVR window in seconds (0: off), or follow ONAIR_DVR_WINDOW_SEC (null). */
  dvr_window_sec: number | null;
  /** Migration 0011: LL-HLS part target in seconds, or follow ONAIR_PART_TARGET_SEC (null). */
  part_target_sec: number | null;
  /** Migration 0011: keyframe interval of the encoded ladder in seconds, or follow ONAIR_GOP_SEC (null). */
  gop_sec: number | null;
  /** Migration 0008: ladder preset; null follows the server's default (ONAIR_DEFAULT_LADDER_PRESET). */
  ladder_preset: LadderPreset | null;
  /** Migration 0006: why the latest refused publisher's source was unusable (codec, no media). */
  source_refusal: string | null;
  /** Migration 0006: when that publisher was refused. */
  source_refused_at: number | null;
}

export interface StreamKeysTable {
  id: Generated<number>;
  event_id: string;
  /** SHA-256 of the key; the key itself is never stored. */
  key_hash: string;
  created_at: number;
  revoked_at: number | null;
  /** Migration 0005: a fresh key sealed with the server secret (lib/key-seal.ts) until it is revealed once (then null). */
  reveal_sealed: string | null;
}

/** Whether an event is listed publicly. */
export type EventVisibility = 'public' | 'unlisted';

/** Operator roles: admins manage, moderators moderate. */
export type OperatorRole = 'admin' | 'moderator';

export interface OperatorsTable {
  id: string;
  email: string;
  role: OperatorRole;
  /** scrypt hash (`scrypt$N$r$p$salt$hash`); the password itself is never stored. */
  password_hash: string;
  created_at: number;
  disabled_at: number | null;
}

export interface OperatorSessionsTable {
  /** SHA-256 of the session cookie value. */
  id_hash: string;
  operator_id: string;
  csrf_token: string;
  created_at: number;
  expires_at: number;
}

export interface ApiTokensTable {
  id: string;
  operator_id: string;
  name: string;
  /** SHA-256 of the bearer token. */
  token_hash: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface OverlaysTable {
  id: string;
  event_id: string;
  /** `flash` (expires) or `disclaimer` (until cleared). */
  kind: 'flash' | 'disclaimer';
  text: string;
  severity: 'info' | 'warning' | 'critical';
  created_at: number;
  expires_at: number | null;
  cleared_at: number | null;
  created_by: string | null;
}

export interface AdBreaksTable {
  id: string;
  event_id: string;
  /** Numeric id (SCTE-35 splice_event_id). */
  seq: number;
  start_at: number;
  duration_ms: number;
  ended_at: number | null;
  creative_url: string | null;
  viewers_at_start: number | null;
  status: 'scheduled' | 'active' | 'done' | 'cancelled';
  created_at: number;
  created_by: string | null;
}

export interface WebhooksTable {
  id: string;
  url: string;
  /** HMAC-SHA256 signing secret (needed in clear to sign). */
  secret: string;
  /** JSON array of subscribed event types. */
  events: string;
  created_at: number;
  disabled_at: number | null;
}

export interface WebhookDeliveriesTable {
  id: string;
  webhook_id: string;
  event_type: string;
  payload: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  created_at: number;
  next_attempt_at: number | null;
  delivered_at: number | null;
}

/** Migration 0003: one chat comment; `seq` is monotonic per event. */
export interface CommentsTable {
  id: string;
  event_id: string;
  seq: number;
  viewer_id: string;
  display_name: string;
  role: string;
  text: string;
  created_at: number;
  /** 1 when a moderator hid it. */
  hidden: number;
  deleted_at: number | null;
}

/** Migration 0003: a viewer's like (1) or dislike (-1) of an event; one row per viewer per event. */
export interface LikesTable {
  event_id: string;
  viewer_id: string;
  value: number;
  updated_at: number;
}

/** Migration 0003: a viewer banned from an event's chat. */
export interface BansTable {
  event_id: string;
  viewer_id: string;
  reason: string;
  banned_by: string;
  created_at: number;
}

/** Migration 0003: per-event chat switches set by moderators. */
export interface ChatSettingsTable {
  event_id: string;
  chat_enabled: number;
  slow_mode_sec: number;
  updated_at: number;
}

/** Lifecycle of a recording: `recording` (being written), `ready` (the broadcast ended), `failed` (storage failed). */
export type RecordingStatus = 'recording' | 'ready' | 'failed';

/** Migration 0007: one row per recorded broadcast of an event. */
export interface RecordingsTable {
  id: string;
  event_id: string;
  status: RecordingStatus;
  /** Key prefix of its objects in the recording storage. */
  storage_prefix: string;
  started_at: number;
  ended_at: number | null;
  duration_ms: number;
  bytes: number;
  /** Why the recording failed. */
  failure: string | null;
}

/** Migration 0010: a clip, a range of one recording served as its own VOD (its manifest in recording storage). */
export interface ClipsTable {
  id: string;
  event_id: string;
  recording_id: string;
  title: string;
  /** The range asked for, in ms from the start of the recording. */
  start_ms: number;
  end_ms: number;
  /** What the clip holds: whole segments covering the range. */
  duration_ms: number;
  segments: number;
  created_at: number;
}

export interface Database {
  clips: ClipsTable;
  recordings: RecordingsTable;
  comments: CommentsTable;
  likes: LikesTable;
  bans: BansTable;
  chat_settings: ChatSettingsTable;
  events: EventsTable;
  stream_keys: StreamKeysTable;
  operators: OperatorsTable;
  operator_sessions: OperatorSessionsTable;
  api_tokens: ApiTokensTable;
  overlays: OverlaysTable;
  ad_breaks: AdBreaksTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
}
