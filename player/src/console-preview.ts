// The console event page's preview: the event muted over LL-HLS; where the server offers WHEP for the live event
// (its OPTIONS answers, as the watch page checks), a Real-time switch plays it over WebRTC instead
// (whep-player.ts) with a viewer token of the operator's role (POST /viewers, role moderator or admin: the operator
// session is not a viewer token). When WHEP refuses (503 whep_full, 404 not_live, 401), no picture comes in 10 s or
// the connection is lost, the preview says so under the picture and plays LL-HLS again, as the watch page does.
// <div class="preview"> carries data-mode (`hls` / `whep`), data-playing and data-realtime-refused for tests.
import { el } from './dom.ts';
import { ApiError } from './api.ts';
import type { EventStatusInfo } from './console-api.ts';
import { LivePlayer } from './live-player.ts';
import { WhepError, WhepPlayer, canPlayWhep, whepOffered } from './whep-player.ts';
import { button, type ConsoleContext } from './console-ui.ts';

const PREVIEW_TEXT: Record<string, string> = {
  idle: 'Waiting for the first publish — start streaming from OBS.',
  offline: 'Offline — no input. Start (or restart) streaming from OBS.',
  ended: 'This event has ended.',
  live: 'Loading preview…',
};

/** Why real time was refused or stopped, for the operator. */
const REFUSAL_TEXT: Record<string, string> = {
  whep_full: 'Real time refused: this server has no WebRTC slot free (ONAIR_WHEP_MAX_VIEWERS).',
  not_live: 'Real time refused: the event is not live on this server.',
  unauthorized: 'Real time refused: the viewer token was not accepted.',
  no_media: 'Real time gave no picture in 10 s.',
  lost: 'Real time connection lost.',
};

/** A token is renewed this long before it expires. */
const TOKEN_MARGIN_MS = 60_000;

/** The preview element and what drives it. */
export interface Preview {
  root: HTMLElement;
  /** Follows the event's status (from the page's status poll). */
  update(status: EventStatusInfo['status']): void;
  destroy(): void;
}

/** Builds the preview of event `eventId` (playing nothing until the first update with status `live`). */
export function preview(ctx: ConsoleContext, eventId: string, hlsUrl: string): Preview {
  const video = el('video', { className: 'preview-video', attrs: { muted: '', playsinline: '', autoplay: '' } });
  video.muted = true;
  const msg = el('p', { className: 'preview-msg', attrs: { role: 'status' } });
  const box = el('div', { className: 'preview', attrs: { 'data-mode': 'hls' } }, [video, msg]);
  const realtime = button('Real-time', 'quiet', { 'data-action': 'realtime', 'aria-pressed': 'false' });
  realtime.hidden = true;
  realtime.title = 'Play the preview over WebRTC (WHEP): about 0.3 s behind live, against about 0.8 s over LL-HLS';
  const note = el('p', { className: 'preview-note', attrs: { role: 'status', 'data-role': 'realtime-note' } });
  note.hidden = true;
  const root = el('div', { className: 'preview-wrap' }, [box, el('div', { className: 'preview-actions' }, [realtime, note])]);

  let status: EventStatusInfo['status'] = 'idle';
  let mode: 'hls' | 'whep' = 'hls';
  let starting = false;
  let destroyed = false;
  /** Whether the server offers WHEP for the event: asked when it goes live, forgotten when it stops. */
  let offered: boolean | undefined;
  let asking = false;
  let token: { token: string; expiresAt: number } | undefined;
  const aborter = new AbortController();

  const showMsg = (text: string | undefined): void => {
    msg.hidden = text === undefined;
    msg.textContent = text ?? '';
  };
  const setPlaying = (on: boolean): void => {
    box.dataset.playing = String(on);
    if (on) showMsg(undefined);
  };
  const render = (): void => {
    box.dataset.mode = mode;
    realtime.hidden = !(status === 'live' && offered === true);
    realtime.setAttribute('aria-pressed', String(mode === 'whep'));
  };

  const player = new LivePlayer(video, {
    onPlaying: () => setPlaying(true),
    onLevels: () => undefined,
    onLevelSwitched: () => undefined,
    onEnded: () => {
      player.stop();
      setPlaying(false);
    },
    onFailed: () => {
      setPlaying(false);
      showMsg('Preview lost — retrying…');
    },
    onError: () => undefined,
    onAutoplayBlocked: () => {
      showMsg('Click to start the preview.');
      box.addEventListener('click', () => void video.play(), { once: true });
    },
  });
  const whep = new WhepPlayer(video, () => fallBack('lost'));

  const startHls = (): void => {
    mode = 'hls';
    setPlaying(false);
    showMsg(PREVIEW_TEXT.live);
    player.start(new URL(hlsUrl, window.location.href).href);
    render();
  };

  /** A viewer token of the operator's role, reused until a minute before it expires. */
  const viewerToken = async (): Promise<string> => {
    if (token && token.expiresAt - TOKEN_MARGIN_MS > Date.now()) return token.token;
    const role = ctx.operator.role === 'admin' ? 'admin' : 'moderator';
    token = await ctx.api.viewerToken('Console preview', role);
    return token.token;
  };

  const startRealtime = async (): Promise<void> => {
    player.stop();
    mode = 'whep';
    starting = true;
    note.hidden = true;
    delete box.dataset.realtimeRefused;
    setPlaying(false);
    showMsg('Starting real time…');
    render();
    try {
      await whep.start(eventId, await viewerToken());
      starting = false;
      if (destroyed || mode !== 'whep') return whep.stop();
      setPlaying(true);
    } catch (err) {
      starting = false;
      if (destroyed || mode !== 'whep') return;
      const code = err instanceof WhepError || err instanceof ApiError ? err.code : 'failed';
      fallBack(code, err instanceof Error ? err.message : String(err));
    }
  };

  /** Real time refused or lost: say why under the picture, play LL-HLS. */
  function fallBack(code: string, detail?: string): void {
    box.dataset.realtimeRefused = code;
    whep.stop();
    note.hidden = false;
    note.textContent = `${REFUSAL_TEXT[code] ?? `Real time unavailable (${code}${detail ? `: ${detail}` : ''}).`} Playing LL-HLS.`;
    if (status === 'live') startHls();
    else render();
  }

  realtime.addEventListener('click', () => {
    if (status !== 'live' || starting) return;
    if (mode === 'whep') {
      whep.stop();
      note.hidden = true;
      startHls();
    } else void startRealtime();
  });

  const askOffered = async (): Promise<void> => {
    asking = true;
    const yes = canPlayWhep() && (await whepOffered(eventId, aborter.signal));
    asking = false;
    if (destroyed || status !== 'live') return;
    offered = yes;
    render();
  };

  return {
    root,
    update(s) {
      status = s;
      if (s === 'live') {
        if (offered === undefined && !asking) void askOffered();
        if (!player.active && !whep.active && !starting) startHls();
      } else {
        player.stop();
        whep.stop();
        mode = 'hls';
        offered = undefined;
        setPlaying(false);
        showMsg(PREVIEW_TEXT[s] ?? '');
      }
      render();
    },
    destroy() {
      destroyed = true;
      aborter.abort();
      player.stop();
      whep.stop();
    },
  };
}
