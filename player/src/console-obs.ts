// "Go live" card of the event page: OBS server URL, stream key (revealed once, copy button), WHIP URL, SRT URL (it
// carries the key: shown with it), key rotation.
import { el } from './dom.ts';
import { ApiError } from './api.ts';
import type { ConsoleEvent, StreamKey } from './console-api.ts';
import { confirmable } from './console-confirm.ts';
import { busy, button, card, type ConsoleContext } from './console-ui.ts';

/** Where the RTMP URL returned by a reveal/rotation is remembered (it holds no secret; the key is never stored). */
const RTMP_URL_KEY = 'onair.console.rtmpUrl';

/** Copies `text` to the clipboard (falls back to a selected hidden textarea off secure contexts). */
export async function copyText(text: string): Promise<void> {
  if (navigator.clipboard !== undefined && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const ta = el('textarea', { className: 'visually-hidden' });
  ta.value = text;
  document.body.append(ta);
  ta.select();
  const ok = document.execCommand('copy');
  ta.remove();
  if (!ok) throw new Error('copy failed: select the text and copy it by hand');
}

/** OBS shows `rtmp://host/live` for the default port 1935, `rtmp://host:port/live` otherwise. */
export function obsServerUrl(rtmpUrl: string | null, hostname: string): string {
  if (rtmpUrl === null) return `rtmp://${hostname}/live`;
  return rtmpUrl.replace(/^(rtmps?:\/\/[^/:]+):1935\//, '$1/');
}

function copyRow(label: string, value: HTMLInputElement, ctx: ConsoleContext, extra: Node[] = []): HTMLElement {
  const copy = button('Copy', 'quiet', { 'aria-label': `Copy ${label}` });
  copy.addEventListener('click', () => {
    copyText(value.value).then(
      () => ctx.toast(`${label} copied.`),
      (err: Error) => ctx.toast(err.message, 'error'),
    );
  });
  return el('div', { className: 'copy-row' }, [
    el('span', { className: 'field-label', text: label }),
    el('div', { className: 'copy-line' }, [value, copy, ...extra]),
  ]);
}

/** Builds the card; `update` follows the event status. */
export function obsCard(ctx: ConsoleContext, event: ConsoleEvent): { root: HTMLElement; update(status: string): void } {
  const isAdmin = ctx.operator.role === 'admin';
  const readonly = (value: string, name: string) =>
    el('input', { className: 'input mono', attrs: { readonly: '', value, name, spellcheck: 'false' } });
  const knownRtmp = localStorage.getItem(RTMP_URL_KEY);
  const server = readonly(obsServerUrl(knownRtmp, window.location.hostname), 'rtmp-server');
  const portNote = el('p', {
    className: 'note',
    text: knownRtmp === null ? 'Assumes the default RTMP port 1935; revealing or rotating the key shows the exact URL.' : '',
  });
  const whip = readonly(new URL(`/whip/${encodeURIComponent(event.id)}`, window.location.href).href, 'whip-url');
  const key = readonly('', 'stream-key');
  key.type = 'password';
  const show = button('Show', 'quiet');
  show.addEventListener('click', () => {
    key.type = key.type === 'password' ? 'text' : 'password';
    show.textContent = key.type === 'password' ? 'Show' : 'Hide';
  });
  const keyRow = copyRow('Stream key', key, ctx, [show]);
  keyRow.hidden = true;
  const keyNote = el('p', { className: 'note', attrs: { 'data-role': 'key-note' } });
  const reveal = button('Reveal stream key', 'primary', { 'data-action': 'reveal-key' });
  // The SRT URL carries the key in its stream id: shown, like the key, only when revealed or rotated.
  const srt = readonly('', 'srt-url');
  srt.type = 'password';
  const srtRow = copyRow('SRT URL', srt, ctx);
  srtRow.hidden = true;
  const srtNote = el('p', {
    className: 'note',
    attrs: { 'data-role': 'srt-note' },
    text: 'Reveal or rotate the stream key to see the SRT URL: it carries the key (streamid=publish:<key>).',
  });

  const showKey = (k: StreamKey, why: string): void => {
    key.value = k.streamKey;
    key.type = 'password';
    show.textContent = 'Show';
    keyRow.hidden = false;
    reveal.hidden = true;
    localStorage.setItem(RTMP_URL_KEY, k.rtmpUrl);
    server.value = obsServerUrl(k.rtmpUrl, window.location.hostname);
    portNote.textContent = '';
    srt.value = k.srtUrl ?? '';
    srtRow.hidden = k.srtUrl === undefined;
    srtNote.textContent =
      k.srtUrl === undefined
        ? 'This server takes no SRT.'
        : 'OBS: Settings → Stream → Service “Custom…”, Server: this URL, Stream Key: empty. Output: keyframe interval 2 s. ' +
          'Add &latency=<µs> for a longer SRT latency, &passphrase=… if the server asks for one.';
    keyNote.textContent = `${why} It is shown only on this page, only now: copy it into OBS (Settings → Stream → Custom). Lost it? Rotate the key.`;
  };
  reveal.addEventListener('click', () => {
    void busy(ctx, reveal, async () => {
      try {
        showKey(await ctx.api.revealKey(event.id), 'Here is the stream key.');
      } catch (err) {
        if (err instanceof ApiError && err.code === 'key_already_revealed') {
          reveal.hidden = true;
          keyNote.textContent = 'The stream key was revealed already and is not shown again. Rotate it to get a new one.';
          return;
        }
        throw err;
      }
    });
  });
  const rotateBtn = button('Rotate key…', 'danger', { 'data-action': 'rotate-key' });
  const rotate = confirmable(rotateBtn, 'Disconnect the current publisher and issue a new key?', 'Rotate key', async () => {
    try {
      const k = await ctx.api.rotateKey(event.id);
      showKey(k, k.disconnected === true ? 'New key issued; the publisher was disconnected.' : 'New key issued.');
      ctx.toast(k.disconnected === true ? 'Key rotated: the publisher was disconnected.' : 'Key rotated.');
    } catch (err) {
      ctx.toast(err instanceof Error ? err.message : String(err), 'error');
    }
  });

  const root = card(
    'Go live (OBS)',
    [
      el('p', {
        className: 'note',
        text: 'In OBS: Settings → Stream → Service “Custom…”, then paste the server and the stream key. Output: keyframe interval 2 s.',
      }),
      copyRow('Server', server, ctx),
      portNote,
      keyRow,
      keyNote,
      el(
        'div',
        { className: 'actions' },
        isAdmin ? [reveal, rotate] : [el('span', { className: 'note', text: 'Only admins can see or rotate the stream key.' })],
      ),
      el('details', { className: 'whip' }, [
        el('summary', { text: 'Browser or OBS WHIP (WebRTC)' }),
        copyRow('WHIP URL', whip, ctx),
        el('p', { className: 'note', text: 'Bearer token: the stream key.' }),
      ]),
      el('details', { className: 'srt' }, [el('summary', { text: 'SRT (OBS, hardware encoders)' }), srtRow, srtNote]),
    ],
    'obs-card',
  );

  return {
    root,
    update(status) {
      const ended = status === 'ended';
      reveal.disabled = ended;
      rotateBtn.disabled = ended;
      if (ended) {
        keyRow.hidden = true;
        key.value = '';
        srtRow.hidden = true;
        srt.value = '';
        keyNote.textContent = 'This event has ended; its keys no longer work.';
      }
    },
  };
}
