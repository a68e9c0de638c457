// The viewer WebSocket protocol, version 1 (docs/protocol.md): message shapes, error and close codes, input checks.
import type { ChatSettings, CommentWire } from './channel.ts';
import type { ViewerSignal } from './viewer-signals.ts';

/** Protocol version spoken by this gateway. */
export const PROTOCOL_VERSION = 1;

/** The fixed reaction set: protocol names (what clients send) → emoji (what the player shows). */
export const REACTIONS = { heart: '❤️', clap: '👏', laugh: '😂', wow: '😮', fire: '🔥', party: '🎉' } as const;

/** A reaction name. */
export type ReactionName = keyof typeof REACTIONS;

/** Comment length bounds, in characters (code points) after trimming and stripping control characters. */
export const COMMENT_MIN = 1;
/** Upper bound of a comment's length. */
export const COMMENT_MAX = 500;

/** Close codes the gateway uses (4000–4999 is the application range of RFC 6455). */
export const CloseCode = {
  /** Server shutting down (standard). */
  goingAway: 1001,
  /** Frame larger than the hard limit (standard, sent by ws itself). */
  tooBig: 1009,
  /** First message was not a valid hello. */
  badHello: 4400,
  /** Token missing, forged or expired. */
  unauthorized: 4401,
  /** Viewer banned from this event's chat. */
  banned: 4403,
  /** No hello within the hello timeout. */
  helloTimeout: 4408,
  /** Slow consumer: too many bytes queued for this client. */
  slowConsumer: 4409,
  /** Too many frames per second from this connection. */
  flooding: 4429,
} as const;

/** Error codes of `{"type":"error"}` messages. */
export type ErrorCode =
  | 'invalid_json'
  | 'binary_not_supported'
  | 'message_too_large'
  | 'invalid_message'
  | 'unknown_type'
  | 'unsupported_version'
  | 'hello_required'
  | 'already_joined'
  | 'invalid_token'
  | 'token_required'
  | 'banned'
  | 'empty_comment'
  | 'comment_too_long'
  | 'invalid_reaction'
  | 'invalid_like'
  | 'rate_limited'
  | 'slow_mode'
  | 'chat_disabled'
  | 'chat_unavailable'
  | 'forbidden'
  | 'not_found'
  | 'internal';

/** Messages a client sends. */
export type ClientMessage =
  | { type: 'hello'; v: number; token?: string; lastSeq?: number }
  | { type: 'comment'; text: string; ref?: string }
  | { type: 'react'; reaction: ReactionName }
  | { type: 'like'; value: 'like' | 'dislike' | 'none'; ref?: string }
  | { type: 'moderate'; ref?: string; [k: string]: unknown }
  | { type: 'ping'; ref?: string };

/** A batch frame: everything that happened since the previous one (fields present only when something did). */
export interface BatchFrame {
  type: 'batch';
  comments?: CommentWire[];
  removed?: string[];
  restored?: CommentWire[];
  reactions?: Partial<Record<ReactionName, number>>;
  likes?: { likes: number; dislikes: number };
  viewers?: number;
  settings?: ChatSettings;
  chat?: 'ok' | 'unavailable';
  /** Operator signals since the previous frame, in order (news flashes, disclaimer, ad breaks, event status). */
  signals?: ViewerSignal[];
}

/** A client message that failed validation; carries the error code to send back. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const REF = /^[A-Za-z0-9_-]{1,64}$/;

function ref(m: Record<string, unknown>): string | undefined {
  if (m.ref === undefined) return undefined;
  if (typeof m.ref !== 'string' || !REF.test(m.ref))
    throw new ProtocolError('invalid_message', 'ref must be 1–64 letters, digits, "_" or "-"');
  return m.ref;
}

/** Parses one text frame; throws ProtocolError with the code the client gets. */
export function parseClientMessage(text: string): ClientMessage {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    throw new ProtocolError('invalid_json', 'message is not valid JSON');
  }
  if (m === null || typeof m !== 'object' || Array.isArray(m)) throw new ProtocolError('invalid_message', 'message must be a JSON object');
  const o = m as Record<string, unknown>;
  switch (o.type) {
    case 'hello': {
      if (o.v !== PROTOCOL_VERSION) throw new ProtocolError('unsupported_version', `protocol version must be ${PROTOCOL_VERSION}`);
      // No token: a read-only watcher. A token that is there must be a non-empty string (verified by the gateway).
      if (o.token !== undefined && (typeof o.token !== 'string' || o.token === ''))
        throw new ProtocolError('invalid_token', 'token must be a token from POST /api/v1/viewers, or absent to watch');
      if (o.lastSeq !== undefined && (typeof o.lastSeq !== 'number' || !Number.isSafeInteger(o.lastSeq) || o.lastSeq < 0)) {
        throw new ProtocolError('invalid_message', 'lastSeq must be a non-negative integer');
      }
      return { type: 'hello', v: o.v, token: o.token, lastSeq: o.lastSeq };
    }
    case 'comment':
      if (typeof o.text !== 'string') throw new ProtocolError('invalid_message', 'text must be a string');
      return { type: 'comment', text: o.text, ref: ref(o) };
    case 'react':
      if (typeof o.reaction !== 'string' || !Object.hasOwn(REACTIONS, o.reaction)) {
        throw new ProtocolError('invalid_reaction', `reaction must be one of ${Object.keys(REACTIONS).join(', ')}`);
      }
      return { type: 'react', reaction: o.reaction as ReactionName };
    case 'like':
      if (o.value !== 'like' && o.value !== 'dislike' && o.value !== 'none')
        throw new ProtocolError('invalid_like', 'value must be like, dislike or none');
      return { type: 'like', value: o.value, ref: ref(o) };
    case 'moderate':
      return { ...o, type: 'moderate', ref: ref(o) };
    case 'ping':
      return { type: 'ping', ref: ref(o) };
    default:
      throw new ProtocolError(
        'unknown_type',
        typeof o.type === 'string' ? `unknown message type "${o.type.slice(0, 32)}"` : 'message needs a type',
      );
  }
}

/** Strips control characters (line breaks and tabs become spaces), trims, and checks the 1–500 character bound. */
export function sanitizeComment(raw: string): string {
  const text = raw
    .normalize('NFC')
    .replace(/[\t\n\r\u2028\u2029]/g, ' ')
    .replace(/\p{Cc}/gu, '')
    .trim();
  const length = [...text].length;
  if (length < COMMENT_MIN) throw new ProtocolError('empty_comment', 'comment is empty');
  if (length > COMMENT_MAX) throw new ProtocolError('comment_too_long', `comment is ${length} characters; at most ${COMMENT_MAX}`);
  return text;
}

/** Serializes a server message. */
export function encode(m: Record<string, unknown> & { type: string }): string {
  return JSON.stringify(m);
}
