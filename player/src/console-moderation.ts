// Moderation card of the event page: the live comment feed with hide / delete / ban per comment, slow mode and
// chat on/off. Comments are text only (textContent), never HTML.
import { el } from './dom.ts';
import type { ConsoleComment, ModerationAction } from './console-api.ts';
import { busy, button, card, clock, errorText, select, type ConsoleContext } from './console-ui.ts';

/** Feed poll period. */
const POLL_MS = 1500;
/** Comments kept in the feed. */
const MAX_SHOWN = 200;

/** Builds the card. */
export function moderationCard(ctx: ConsoleContext, eventId: string): { root: HTMLElement; destroy(): void } {
  const feed = el('ol', { className: 'mod-feed', attrs: { 'aria-live': 'polite', 'aria-label': 'Live comments' } });
  const empty = el('p', { className: 'empty', text: 'No comments yet.' });
  const state = el('p', { className: 'note' });
  const slow = select(
    [
      ['0', 'Slow mode off'],
      ['5', 'Slow: 1 per 5 s'],
      ['10', 'Slow: 1 per 10 s'],
      ['30', 'Slow: 1 per 30 s'],
      ['60', 'Slow: 1 per minute'],
    ],
    { 'aria-label': 'Slow mode', name: 'slow-mode' },
  );
  const chatToggle = button('Turn chat off', 'quiet', { 'data-action': 'chat-toggle', 'aria-pressed': 'true' });
  let chatEnabled = true;
  const banned = new Set<string>();

  const act = async (action: ModerationAction, done: string): Promise<boolean> => {
    try {
      await ctx.api.moderate(eventId, action);
      ctx.toast(done);
      return true;
    } catch (err) {
      ctx.toast(`Moderation failed: ${errorText(err)}`, 'error');
      return false;
    }
  };

  slow.addEventListener('change', () => {
    const seconds = Number(slow.value);
    slowBusy = true;
    void act({ action: 'slow_mode', seconds }, seconds === 0 ? 'Slow mode off.' : `Slow mode: one comment per ${seconds} s.`).finally(
      () => (slowBusy = false),
    );
  });
  chatToggle.addEventListener('click', () => {
    void busy(ctx, chatToggle, async () => {
      const enabled = !chatEnabled;
      if (await act({ action: 'chat', enabled }, enabled ? 'Chat is on.' : 'Chat is off for viewers.')) setChat(enabled);
    });
  });
  const setChat = (enabled: boolean): void => {
    chatEnabled = enabled;
    chatToggle.textContent = enabled ? 'Turn chat off' : 'Turn chat on';
    chatToggle.setAttribute('aria-pressed', String(enabled));
    state.textContent = enabled ? '' : 'Chat is off: viewers cannot comment.';
  };

  let slowBusy = false;
  const applySettings = (enabled: boolean, slowSec: number): void => {
    if (enabled !== chatEnabled) setChat(enabled);
    if (slowBusy || document.activeElement === slow) return;
    const value = String(slowSec);
    if (![...slow.options].some((o) => o.value === value))
      slow.append(el('option', { text: `Slow: 1 per ${slowSec} s`, attrs: { value } }));
    slow.value = value;
  };

  const row = (c: ConsoleComment): HTMLElement => {
    const hide = button('Hide', 'quiet', { 'data-action': 'hide' });
    const del = button('Delete', 'danger', { 'data-action': 'delete' });
    const ban = button(banned.has(c.viewerId) ? 'Unban' : 'Ban', 'quiet', { 'data-action': 'ban' });
    const item = el('li', { className: 'mod-item', attrs: { 'data-id': c.id, 'data-seq': String(c.seq), 'data-viewer': c.viewerId } }, [
      el('div', { className: 'mod-line' }, [
        el('span', { className: 'mod-time', text: clock(c.at) }),
        el('span', { className: 'chat-author', text: c.name }),
        el('span', { className: 'mod-text', text: c.text }),
      ]),
      el('div', { className: 'mod-actions' }, [hide, del, ban]),
    ]);
    hide.addEventListener('click', () => {
      void busy(ctx, hide, async () => {
        const hidden = item.dataset.hidden === 'true';
        if (
          await act(
            { action: hidden ? 'unhide' : 'hide', commentId: c.id },
            hidden ? 'Comment shown again.' : 'Comment hidden from viewers.',
          )
        ) {
          item.dataset.hidden = String(!hidden);
          hide.textContent = hidden ? 'Hide' : 'Unhide';
        }
      });
    });
    del.addEventListener('click', () => {
      void busy(ctx, del, async () => {
        if (await act({ action: 'delete', commentId: c.id }, 'Comment deleted.')) {
          item.dataset.deleted = 'true';
          item.querySelector('.mod-text')!.textContent = '(deleted)';
        }
      }).then(() => {
        // busy() re-enables the button: keep a deleted comment's buttons off.
        if (item.dataset.deleted === 'true') hide.disabled = del.disabled = true;
      });
    });
    ban.addEventListener('click', () => {
      void busy(ctx, ban, async () => {
        const isBanned = banned.has(c.viewerId);
        const ok = await act(
          isBanned ? { action: 'unban', viewerId: c.viewerId } : { action: 'ban', viewerId: c.viewerId, reason: 'banned from the console' },
          isBanned ? `${c.name} unbanned.` : `${c.name} banned.`,
        );
        if (!ok) return;
        if (isBanned) banned.delete(c.viewerId);
        else banned.add(c.viewerId);
        for (const b of feed.querySelectorAll<HTMLElement>(`[data-viewer="${CSS.escape(c.viewerId)}"]`)) {
          b.dataset.banned = String(!isBanned);
          const bb = b.querySelector<HTMLButtonElement>('[data-action="ban"]');
          if (bb !== null) bb.textContent = isBanned ? 'Ban' : 'Unban';
        }
      });
    });
    if (c.deleted === true) {
      item.dataset.deleted = 'true';
      item.querySelector('.mod-text')!.textContent = '(deleted)';
      hide.disabled = del.disabled = true;
    } else if (c.hidden === true) {
      item.dataset.hidden = 'true';
      hide.textContent = 'Unhide';
    }
    return item;
  };

  let after = 0;
  const add = (comments: readonly ConsoleComment[]): void => {
    const stick = feed.scrollTop + feed.clientHeight >= feed.scrollHeight - 20;
    for (const c of comments) {
      if (c.seq <= after && feed.querySelector(`[data-id="${CSS.escape(c.id)}"]`) !== null) continue;
      feed.append(row(c));
      after = Math.max(after, c.seq);
    }
    while (feed.children.length > MAX_SHOWN) feed.firstElementChild?.remove();
    empty.hidden = feed.children.length > 0;
    if (stick) feed.scrollTop = feed.scrollHeight;
  };

  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const aborter = new AbortController();
  const poll = async (): Promise<void> => {
    try {
      for (let page = 0; page < 5; page++) {
        const r = await ctx.api.moderationComments(eventId, after, aborter.signal);
        add(r.comments);
        if (r.settings !== undefined) applySettings(r.settings.chatEnabled, r.settings.slowModeSec);
        if (!r.hasMore) break;
      }
      if (state.dataset.error === 'true') {
        state.textContent = chatEnabled ? '' : state.textContent;
        delete state.dataset.error;
      }
    } catch (err) {
      if (stopped) return;
      state.dataset.error = 'true';
      state.textContent = `Comment feed unavailable: ${errorText(err)} — retrying…`;
    }
    if (!stopped) timer = setTimeout(() => void poll(), POLL_MS);
  };
  void poll();

  const root = card('Chat moderation', [el('div', { className: 'mod-controls' }, [slow, chatToggle]), state, empty, feed], 'mod-card');
  return {
    root,
    destroy() {
      stopped = true;
      aborter.abort();
      clearTimeout(timer);
    },
  };
}
