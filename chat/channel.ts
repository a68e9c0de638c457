// The chat messages carried on the bus between edges and control (one channel per event), and their encoding.

/** A comment as it travels on the bus and reaches clients. */
export interface CommentWire {
  id: string;
  seq: number;
  viewerId: string;
  name: string;
  role: 'viewer' | 'moderator' | 'admin';
  text: string;
  /** Creation time, ms since the epoch. */
  at: number;
}

/** Per-event chat settings set by moderators. */
export interface ChatSettings {
  chatEnabled: boolean;
  /** Minimum seconds between two comments of one viewer; 0 = off. */
  slowModeSec: number;
}

/** Everything that travels on an event's chat channel. */
export type ChatBusMessage =
  | { t: 'comment'; comment: CommentWire }
  | { t: 'reactions'; edge: string; counts: Record<string, number> }
  | { t: 'likes'; likes: number; dislikes: number }
  | { t: 'remove'; ids: string[] }
  | { t: 'restore'; comment: CommentWire }
  | { t: 'ban'; viewerId: string }
  | { t: 'unban'; viewerId: string }
  | { t: 'settings'; settings: ChatSettings };

/** Bus channel of an event's chat (the hash tag keeps one event on one Redis Cluster shard). */
export function chatChannel(eventId: string): string {
  return `onair:chat:{${eventId}}`;
}

/** Serializes a bus message. */
export function encodeChatMessage(m: ChatBusMessage): string {
  return JSON.stringify(m);
}

/** Parses a bus message; undefined for anything malformed (the bus is trusted, but versions may differ). */
export function decodeChatMessage(text: string): ChatBusMessage | undefined {
  try {
    const m = JSON.parse(text) as { t?: unknown };
    if (m && typeof m === 'object' && typeof m.t === 'string') return m as ChatBusMessage;
  } catch {
    /* ignored */
  }
  return undefined;
}
