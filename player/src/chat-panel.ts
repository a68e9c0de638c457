// The chat panel: name picker, comment list (text only, never HTML), input, and visible error states.
import { el } from './dom.ts';
import {
  ChatClient,
  forgetViewer,
  loadViewer,
  requestViewer,
  type ChatComment,
  type ChatHandlers,
  type ChatStatus,
  type StoredViewer,
} from './chat-client.ts';
import { ReactionsBar } from './reactions-bar.ts';

/** Comments kept in the DOM. */
const MAX_SHOWN = 300;

const STATUS_TEXT: Record<ChatStatus, string> = {
  connecting: 'Connecting to chat…',
  live: '',
  unavailable: 'Chat is temporarily unavailable.',
  reconnecting: 'Chat disconnected — reconnecting…',
  banned: 'You are banned from this chat.',
};

/** Mounts chat, reactions, likes and viewer count for one event; returns a function that removes them. */
export function mountChat(
  panel: HTMLElement,
  bar: HTMLElement,
  burstLayer: HTMLElement,
  eventId: string,
  onMessage?: (m: Record<string, unknown>) => void,
): () => void {
  const list = el('ol', { className: 'chat-list', attrs: { 'aria-live': 'polite' } });
  const status = el('p', { className: 'chat-status', attrs: { role: 'status' } });
  const error = el('p', { className: 'chat-error', attrs: { role: 'alert' } });
  const input = el('input', {
    className: 'chat-input',
    attrs: { type: 'text', maxlength: '500', placeholder: 'Say something…', 'aria-label': 'Comment' },
  });
  const send = el('button', { className: 'chat-send', text: 'Send', attrs: { type: 'submit' } });
  const form = el('form', { className: 'chat-form' }, [input, send]);
  const nameInput = el('input', {
    className: 'chat-name',
    attrs: { type: 'text', maxlength: '24', placeholder: 'Your name', 'aria-label': 'Display name' },
  });
  const nameForm = el('form', { className: 'chat-join' }, [nameInput, el('button', { text: 'Join chat', attrs: { type: 'submit' } })]);
  const who = el('p', { className: 'chat-who' });
  panel.replaceChildren(el('h2', { className: 'chat-title', text: 'Live chat' }), status, list, error, who, nameForm, form);
  panel.dataset.status = 'connecting';

  let client: ChatClient | undefined;
  /** Joined with a name (can post); otherwise watching: everything live, nothing to send. */
  let joined = false;
  let errorTimer: ReturnType<typeof setTimeout> | undefined;
  const reactions = new ReactionsBar(bar, burstLayer, {
    react: (name) => client?.react(name),
    like: (value) => client?.like(value),
  });
  reactions.setEnabled(false);

  const showError = (text: string, ms = 6000) => {
    error.textContent = text;
    clearTimeout(errorTimer);
    if (ms > 0) errorTimer = setTimeout(() => (error.textContent = ''), ms);
  };
  const setStatus = (s: ChatStatus, detail?: string) => {
    panel.dataset.status = s;
    status.textContent = detail ?? (s === 'live' && !joined ? 'Pick a name to join the chat.' : STATUS_TEXT[s]);
    const canPost = s === 'live' && joined;
    input.disabled = !canPost;
    send.disabled = !canPost;
    reactions.setEnabled(canPost);
  };
  const append = (comments: ChatComment[]) => {
    for (const c of comments) {
      const item = el(
        'li',
        { className: `chat-item role-${c.role === 'viewer' ? 'viewer' : 'staff'}`, attrs: { 'data-id': c.id, 'data-seq': String(c.seq) } },
        [el('span', { className: 'chat-author', text: c.name }), el('span', { className: 'chat-text', text: c.text })],
      );
      // Keep seq order even for restored comments.
      const after = [...list.children].find((n) => Number((n as HTMLElement).dataset.seq) > c.seq);
      list.insertBefore(item, after ?? null);
    }
    while (list.children.length > MAX_SHOWN) list.firstElementChild?.remove();
    list.scrollTop = list.scrollHeight;
  };

  const handlers: ChatHandlers = {
    onStatus: setStatus,
    onMessage,
    onComments: append,
    onRemoved: (ids) => {
      for (const id of ids) list.querySelector(`[data-id="${CSS.escape(id)}"]`)?.remove();
    },
    onReactions: (counts) => reactions.showReactions(counts),
    onLikes: (l, d, mine) => reactions.setLikes(l, d, mine),
    onViewers: (n) => reactions.setViewers(n),
    onSettings: (s) => {
      panel.dataset.chatEnabled = String(s.chatEnabled);
      input.placeholder = !s.chatEnabled
        ? 'Chat is off'
        : s.slowModeSec > 0
          ? `Slow mode: one comment every ${s.slowModeSec} s`
          : 'Say something…';
    },
    onError: (code, message, retryAfterMs) => {
      panel.dataset.lastError = code;
      const wait = retryAfterMs ? ` Try again in ${Math.ceil(retryAfterMs / 1000)} s.` : '';
      const text: Record<string, string> = {
        rate_limited: 'You are sending too fast.',
        slow_mode: 'Slow mode is on.',
        chat_unavailable: 'Chat is temporarily unavailable; your message was not sent.',
        chat_disabled: 'Chat is turned off.',
        banned: 'You are banned from this chat.',
        token_required: 'Pick a name to join the chat first.',
      };
      showError((text[code] ?? message) + wait);
    },
    onTokenRejected: () => {
      forgetViewer();
      connect();
    },
  };

  /** (Re)connects, continuing after the comments already shown: as `v` when given, else as a watcher. */
  const connect = (v?: StoredViewer) => {
    const seq = client?.seq;
    client?.close();
    joined = v !== undefined;
    nameForm.hidden = joined;
    form.hidden = !joined;
    who.textContent = v ? `Chatting as ${v.viewer.name}` : '';
    client = new ChatClient(eventId, v?.token, handlers, seq);
    client.open();
  };

  nameForm.addEventListener('submit', (e) => {
    e.preventDefault();
    requestViewer(nameInput.value).then(connect, (err: Error) => showError(err.message));
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (text === '') return;
    client?.comment(text);
    input.value = '';
  });

  connect(loadViewer());
  return () => {
    clearTimeout(errorTimer);
    client?.close();
    panel.replaceChildren();
    bar.replaceChildren();
  };
}
