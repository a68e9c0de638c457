// Moderation actions (hide/delete comments, ban viewers, slow mode, chat on/off): stored, then announced on the bus to every edge.
import { BusUnavailableError } from '../lib/bus/bus.ts';
import { chatChannel, encodeChatMessage, type ChatBusMessage, type ChatSettings } from './channel.ts';
import type { CommentStore } from './comments.ts';

/** What the moderation service needs from the bus. */
export interface ModerationBus {
  isUp(): boolean;
  publish(channel: string, message: string): Promise<void>;
}

/** A moderation request, as it comes from the WebSocket (`moderate`) or the REST API. */
export type ModerationAction =
  | { action: 'hide' | 'unhide' | 'delete'; commentId: string }
  | { action: 'ban'; viewerId: string; reason?: string }
  | { action: 'unban'; viewerId: string }
  | { action: 'slow_mode'; seconds: number }
  | { action: 'chat'; enabled: boolean };

/** A moderation request that is malformed or names nothing; `code` is the protocol error code. */
export class ModerationError extends Error {
  override name = 'ModerationError';
  constructor(
    readonly code: 'invalid_message' | 'not_found',
    message: string,
  ) {
    super(message);
  }
}

/** Parses an untrusted moderation request. */
export function parseModerationAction(raw: Record<string, unknown>): ModerationAction {
  const id = (k: string) => {
    const v = raw[k];
    if (typeof v !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(v)) throw new ModerationError('invalid_message', `${k} must be an id`);
    return v;
  };
  switch (raw.action) {
    case 'hide':
    case 'unhide':
    case 'delete':
      return { action: raw.action, commentId: id('commentId') };
    case 'ban':
      return { action: 'ban', viewerId: id('viewerId'), reason: typeof raw.reason === 'string' ? raw.reason : undefined };
    case 'unban':
      return { action: 'unban', viewerId: id('viewerId') };
    case 'slow_mode': {
      const s = raw.seconds;
      if (typeof s !== 'number' || !Number.isInteger(s) || s < 0 || s > 3600)
        throw new ModerationError('invalid_message', 'seconds must be an integer 0–3600');
      return { action: 'slow_mode', seconds: s };
    }
    case 'chat':
      if (typeof raw.enabled !== 'boolean') throw new ModerationError('invalid_message', 'enabled must be true or false');
      return { action: 'chat', enabled: raw.enabled };
    default:
      throw new ModerationError('invalid_message', 'action must be one of hide, unhide, delete, ban, unban, slow_mode, chat');
  }
}

/** Server-side moderation API, used by the gateway (moderator tokens) and the operator API (chat/routes.ts). */
export class ModerationService {
  constructor(
    private readonly store: CommentStore,
    private readonly bus: ModerationBus,
  ) {}

  /** Applies one action for `eventId` on behalf of `by` (a viewer or operator id); returns the resulting settings where relevant. */
  async apply(eventId: string, a: ModerationAction, by: string): Promise<{ ok: true; settings?: ChatSettings }> {
    // Refuse up front while the bus is down: a change that reaches the store but no edge would look like it failed.
    if (!this.bus.isUp()) throw new BusUnavailableError('chat bus is unavailable; try again');
    switch (a.action) {
      case 'hide':
      case 'unhide':
      case 'delete': {
        const c = await this.store.byId(eventId, a.commentId);
        if (!c) throw new ModerationError('not_found', 'no such comment in this event');
        if (a.action === 'delete') await this.store.delete(eventId, a.commentId);
        else await this.store.setHidden(eventId, a.commentId, a.action === 'hide');
        if (a.action === 'unhide') {
          if (!c.deleted)
            await this.announce(eventId, {
              t: 'restore',
              comment: { id: c.id, seq: c.seq, viewerId: c.viewerId, name: c.name, role: c.role, text: c.text, at: c.at },
            });
        } else await this.announce(eventId, { t: 'remove', ids: [a.commentId] });
        return { ok: true };
      }
      case 'ban':
        await this.store.ban(eventId, a.viewerId, by, a.reason);
        await this.announce(eventId, { t: 'ban', viewerId: a.viewerId });
        return { ok: true };
      case 'unban':
        await this.store.unban(eventId, a.viewerId);
        await this.announce(eventId, { t: 'unban', viewerId: a.viewerId });
        return { ok: true };
      case 'slow_mode':
      case 'chat': {
        const settings = await this.store.updateSettings(
          eventId,
          a.action === 'chat' ? { chatEnabled: a.enabled } : { slowModeSec: a.seconds },
        );
        await this.announce(eventId, { t: 'settings', settings });
        return { ok: true, settings };
      }
    }
  }

  private announce(eventId: string, m: ChatBusMessage): Promise<void> {
    return this.bus.publish(chatChannel(eventId), encodeChatMessage(m));
  }
}
