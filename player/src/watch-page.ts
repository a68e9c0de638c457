// Entry of watch.html: shows one event, plays it while live, waits (polling) while it is not.
import { ApiError, getEventBySlug } from './api.ts';
import type { ApiEvent } from '../../control/api-types.ts';
import { byId } from './dom.ts';
import { attachSeekPreview, type SeekPreview } from './seek-preview.ts';
import { LivePlayer, canPlayHls } from './live-player.ts';
import type { FailureReason } from './live-player.ts';
import { QualityMenu } from './quality-menu.ts';
import { DvrBar, formatBehind, timeAtFraction } from './dvr-bar.ts';
import { mountChat } from './chat-panel.ts';
import { OverlayFeed } from './overlay-feed.ts';
import { ViewerOverlays } from './viewer-overlays.ts';
import { installHook, pushHookError, setHookState } from './test-hook.ts';
import { loadViewer } from './chat-client.ts';
import { WhepError, WhepPlayer, canPlayWhep, whepOffered } from './whep-player.ts';
import type { WatchState } from './test-hook.ts';
import './style.css';

/** Poll period while the event is not live (or unreachable). */
const OFFLINE_POLL_MS = 2000;
/** Refresh period of title/description while playing. */
const PLAYING_POLL_MS = 15_000;
/** Latency readout refresh period. */
const LATENCY_MS = 500;
/** How long the real-time button says real time was refused. */
const REFUSED_NOTE_MS = 6_000;

const MESSAGES: Record<WatchState, string> = {
  loading: 'Connecting…',
  offline: 'offline — waiting for the broadcast',
  playing: '',
  ended: 'This broadcast has ended.',
  error: 'Something went wrong.',
};

/** Media events after which the audio view may have to show or hide. */
const AUDIO_VIEW_EVENTS = ['loadedmetadata', 'resize', 'playing', 'emptied'];

/** Reads the slug from /watch/<slug> (or ?slug= when served as /watch.html in development). */
export function slugFromLocation(loc: Location): string {
  const match = /^\/watch\/([^/]+)\/?$/.exec(loc.pathname);
  if (match?.[1] !== undefined) return decodeURIComponent(match[1]);
  return new URLSearchParams(loc.search).get('slug') ?? '';
}

/** Starts the watch page; returns a function that stops everything it started. */
export function startWatchPage(): () => void {
  const video = byId<HTMLVideoElement>('video');
  const title = byId('title');
  const description = byId('description');
  const overlay = byId('overlay');
  const unmute = byId<HTMLButtonElement>('unmute');
  const latency = byId('latency');
  const fullscreen = byId<HTMLButtonElement>('fullscreen');
  const stage = byId('stage');
  const audioView = byId('audio-only');
  const realtime = byId<HTMLButtonElement>('realtime');
  const seekRow = byId('seek-row');
  const seek = byId<HTMLInputElement>('seek');

  const slug = slugFromLocation(window.location);
  let pollTimer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let autoplayBlocked = false;
  const aborter = new AbortController();
  /** Real time asked for (the toggle, or ?realtime=1); cleared when it is refused, and LL-HLS plays instead. */
  let realtimeWanted = new URLSearchParams(window.location.search).get('realtime') === '1';
  let realtimeStarting = false;
  /** Whether the server offers WHEP for the live event (asked once per event). */
  let whepFor: { id: string; offered: boolean } | undefined;
  let current: ApiEvent | undefined;
  let noteTimer: ReturnType<typeof setTimeout> | undefined;

  const player = new LivePlayer(video, {
    onPlaying: () => {
      autoplayBlocked = false;
      setState('playing');
      schedule(PLAYING_POLL_MS);
    },
    onLevels: (levels) => {
      hook.levels = levels;
      menu.setLevels(levels);
    },
    onLevelSwitched: (level) => {
      hook.currentLevel = level;
      menu.update(player.hls?.autoLevelEnabled ?? true, level);
    },
    onEnded: () => {
      if (replaying !== undefined) {
        // The replay played to its end: keep it (the viewer may seek back), say so.
        setState('ended', 'End of the replay.');
        overlay.hidden = true;
        return;
      }
      player.stop();
      resetPlayback();
      setState('ended');
      schedule(OFFLINE_POLL_MS);
    },
    onFailed: (reason: FailureReason) => {
      resetPlayback();
      if (replaying !== undefined) {
        // The recording went away (deleted) or cannot be played: back to the offline path, which looks again later.
        replaying = undefined;
        hideReplayPreviews();
        hook.replay = false;
        video.controls = false;
        replayChecked = false;
      }
      if (reason === 'unsupported') {
        setState('error', 'This browser cannot play the stream.');
        return;
      }
      setState('offline');
      // A missing master means "not (yet) there": wait a poll period. Otherwise re-check now.
      schedule(reason === 'manifest' ? OFFLINE_POLL_MS : 500);
    },
    onError: (message) => pushHookError(hook, message),
    onAutoplayBlocked: () => {
      autoplayBlocked = true;
      overlay.hidden = true;
      updateControls();
    },
  });
  const hook = installHook(() => player.hls);
  const whep = new WhepPlayer(video, () => {
    if (current) fallBack(current, 'lost');
  });
  // The DVR seek bar with its "Live" button, over the bottom of the picture while live HLS plays.
  const dvrBar = new DvrBar(stage, player);
  const menu = new QualityMenu(byId<HTMLSelectElement>('quality'), (level) => {
    player.setLevel(level);
    menu.update(level === -1, hook.currentLevel);
  });

  function setState(state: WatchState, message = MESSAGES[state]): void {
    setHookState(hook, state);
    overlay.textContent = message;
    overlay.hidden = message === '';
    updateControls();
  }

  function resetPlayback(): void {
    hook.levels = [];
    hook.currentLevel = -1;
    menu.setLevels([]);
  }

  function updateControls(): void {
    const active = hook.state === 'playing' || autoplayBlocked;
    unmute.hidden = !active || (!video.muted && !video.paused);
    unmute.textContent = video.paused ? '▶ Tap to play' : '🔇 Tap to unmute';
    latency.hidden = hook.state !== 'playing' || replaying !== undefined;
    const dvrOn = hook.state === 'playing' && hook.mode === 'hls' && replaying === undefined;
    dvrBar.setEnabled(dvrOn);
    showDvrPreviews(dvrOn ? current : undefined);
    // Real time for viewers with a token, where the server offers it for this event.
    const live = replaying === undefined && (hook.state === 'playing' || hook.state === 'loading');
    realtime.hidden = !(live && whepFor?.offered === true && whepFor.id === current?.id && loadViewer() !== undefined);
    realtime.setAttribute('aria-pressed', String(hook.mode === 'whep' || realtimeStarting));
  }

  function startHls(event: ApiEvent): void {
    hook.mode = 'hls';
    player.start(new URL(event.hlsUrl, window.location.href).href);
    updateControls();
  }

  /** Plays the live event over WHEP; on a refusal or failure, says so on the button and plays LL-HLS. */
  async function startRealtime(event: ApiEvent): Promise<void> {
    const viewer = loadViewer();
    if (!viewer) return startHls(event);
    player.stop();
    resetPlayback();
    hook.mode = 'whep';
    realtimeStarting = true;
    setState('loading');
    try {
      await whep.start(event.id, viewer.token);
      realtimeStarting = false;
      if (stopped) return;
      setState('playing');
      schedule(PLAYING_POLL_MS);
    } catch (err) {
      realtimeStarting = false;
      if (stopped || hook.mode !== 'whep') return;
      fallBack(event, err instanceof WhepError ? err.code : 'failed');
    }
  }

  function fallBack(event: ApiEvent, code: string): void {
    hook.realtimeRefused = code;
    pushHookError(hook, `real time: ${code}`);
    realtimeWanted = false;
    whep.stop();
    realtime.textContent = code === 'whep_full' ? 'Real-time full' : 'Real-time unavailable';
    clearTimeout(noteTimer);
    noteTimer = setTimeout(() => (realtime.textContent = 'Real-time'), REFUSED_NOTE_MS);
    setState('loading');
    startHls(event);
  }

  function schedule(ms: number): void {
    clearTimeout(pollTimer);
    if (!stopped) pollTimer = setTimeout(() => void check(), ms);
  }

  let unmountChat: (() => void) | undefined;
  let overlayFeed: OverlayFeed | undefined;
  let overlayView: ViewerOverlays | undefined;
  function render(event: ApiEvent): void {
    if (overlayFeed === undefined) {
      // News flashes, disclaimer and ad breaks: WebSocket signals (through the chat connection) + polled overlays GET.
      const view = new ViewerOverlays(byId('news'), byId('disclaimer'), byId('adbreak'), video);
      overlayView = view;
      overlayFeed = new OverlayFeed(
        event.id,
        (state) => view.update(state),
        () => schedule(0),
      );
      overlayFeed.start();
    }
    const feed = overlayFeed;
    unmountChat ??= mountChat(byId('chat'), byId('reactions'), byId('burst'), event.id, (m) => void feed.applyMessage(m));
    title.textContent = event.title;
    description.textContent = event.description;
    document.title = `${event.title} — onair`;
  }

  /** The replay's URL while one plays; `undefined` while live or before one was found. */
  let replaying: string | undefined;
  /** A replay was looked for since the event last was live (one HEAD per non-live spell, not one per poll). */
  let replayChecked = false;

  /** Once the event is not live: plays its recording as VOD (seek bar, its duration) when its hlsUrl answers. */
  async function tryReplay(event: ApiEvent): Promise<boolean> {
    if (replayChecked) return replaying !== undefined;
    replayChecked = true;
    const url = new URL(event.hlsUrl, window.location.href).href;
    try {
      const r = await fetch(url, { method: 'HEAD', signal: aborter.signal });
      if (!r.ok) return false;
    } catch {
      replayChecked = false;
      return false;
    }
    if (stopped) return false;
    replaying = url;
    hook.replay = true;
    video.controls = true;
    latency.hidden = true;
    showReplayPreviews(event);
    setState('loading');
    player.start(url);
    return true;
  }

  /**
   * Seek previews over the DVR bar while live: the broadcast's growing thumbnails VTT, whose cue times count from the
   * broadcast's start. The bar's live end is the VTT's end (give or take the segment being made), so a point
   * `behind` seconds back is cue time `vttEnd - behind`.
   */
  let dvrPreview: { eventId: string; preview: SeekPreview } | undefined;
  function showDvrPreviews(event: ApiEvent | undefined): void {
    if (dvrPreview && dvrPreview.eventId === event?.id) return;
    dvrPreview?.preview.destroy();
    dvrPreview = undefined;
    if (!event) return;
    const behind = (t: number) => (player.liveEdge() ?? t) - t;
    const preview = attachSeekPreview({
      bar: dvrBar.track,
      vttUrl: new URL(`/live/${event.id}/thumbnails.vtt`, window.location.href).href,
      timeAt: (f) => {
        const r = player.dvrRange();
        return r ? timeAtFraction(r, f) : NaN;
      },
      cueTime: (t, vttEnd) => vttEnd - behind(t),
      label: (t) => formatBehind(behind(t)),
      refreshMs: 10_000,
    });
    dvrPreview = { eventId: event.id, preview };
  }

  /** The replay's poster (the recording's), its seek-preview track (a link players and tools find) and a seek bar with previews. */
  let preview: SeekPreview | undefined;
  let previewTrack: HTMLTrackElement | undefined;
  function showReplayPreviews(event: ApiEvent): void {
    video.poster = new URL(event.thumbnailUrl, window.location.href).href;
    const vttUrl = new URL(`/live/${event.id}/thumbnails.vtt`, window.location.href).href;
    previewTrack = document.createElement('track');
    previewTrack.kind = 'metadata';
    previewTrack.label = 'thumbnails';
    previewTrack.src = vttUrl;
    video.append(previewTrack);
    seekRow.hidden = false;
    preview = attachSeekPreview({ bar: seek, vttUrl, timeAt: (f) => f * Number(seek.max) });
  }
  function hideReplayPreviews(): void {
    preview?.destroy();
    preview = undefined;
    previewTrack?.remove();
    previewTrack = undefined;
    video.removeAttribute('poster');
    seekRow.hidden = true;
  }
  const syncSeek = () => {
    if (replaying === undefined || !Number.isFinite(video.duration)) return;
    seek.max = String(video.duration);
    if (document.activeElement !== seek) seek.value = String(video.currentTime);
  };
  video.addEventListener('durationchange', syncSeek);
  video.addEventListener('timeupdate', syncSeek);
  seek.addEventListener('input', () => {
    if (replaying !== undefined) video.currentTime = Number(seek.value);
  });

  function stopReplay(): void {
    if (replaying === undefined) return;
    replaying = undefined;
    hideReplayPreviews();
    hook.replay = false;
    video.controls = false;
    player.stop();
    resetPlayback();
  }

  function apply(event: ApiEvent): void {
    current = event;
    render(event);
    if (event.status === 'live') {
      replayChecked = false;
      stopReplay();
      if (!player.active && !whep.active && !realtimeStarting) {
        setState('loading');
        if (realtimeWanted && whepFor?.offered && loadViewer()) void startRealtime(event);
        else startHls(event);
      }
      // While loading, keep polling so that a stuck start is retried by the failure path.
      schedule(hook.state === 'playing' ? PLAYING_POLL_MS : OFFLINE_POLL_MS);
      return;
    }
    if (replaying !== undefined) {
      // Replaying: poll slowly, in case the event goes live again.
      if (player.active) schedule(PLAYING_POLL_MS);
      return;
    }
    if (hook.state === 'playing') {
      // Publisher gone: play out what is buffered; the player reports the end or a failure.
      schedule(OFFLINE_POLL_MS);
      return;
    }
    player.stop();
    whep.stop();
    resetPlayback();
    setState(event.status === 'ended' ? 'ended' : 'offline');
    schedule(OFFLINE_POLL_MS);
    if (event.status !== 'idle') void tryReplay(event);
  }

  async function check(): Promise<void> {
    if (slug === '') {
      setState('error', 'No event given.');
      return;
    }
    try {
      const event = await getEventBySlug(slug, aborter.signal);
      if (event.status === 'live' && whepFor?.id !== event.id) {
        whepFor = { id: event.id, offered: canPlayWhep() && (await whepOffered(event.id, aborter.signal)) };
      }
      apply(event);
    } catch (err) {
      if (stopped) return;
      if (err instanceof ApiError && err.status === 404) {
        player.stop();
        resetPlayback();
        title.textContent = 'Event not found';
        setState('error', 'There is no event at this address.');
        return;
      }
      pushHookError(hook, `api: ${err instanceof Error ? err.message : String(err)}`);
      if (hook.state !== 'playing') setState('offline', 'Cannot reach the server — retrying…');
      schedule(OFFLINE_POLL_MS);
    }
  }

  const onUnmute = (): void => {
    video.muted = false;
    autoplayBlocked = false;
    void video.play().catch(() => undefined);
    updateControls();
  };
  const onFullscreen = (): void => {
    const iosVideo = video as HTMLVideoElement & { webkitEnterFullscreen?: () => void };
    if (document.fullscreenElement !== null) void document.exitFullscreen();
    else if (typeof stage.requestFullscreen === 'function') void stage.requestFullscreen().catch(() => undefined);
    else iosVideo.webkitEnterFullscreen?.();
  };
  const onRealtime = (): void => {
    if (current?.status !== 'live') return;
    if (hook.mode === 'whep') {
      realtimeWanted = false;
      whep.stop();
      setState('loading');
      startHls(current);
    } else {
      realtimeWanted = true;
      void startRealtime(current);
    }
  };
  realtime.addEventListener('click', onRealtime);
  unmute.addEventListener('click', onUnmute);
  fullscreen.addEventListener('click', onFullscreen);
  for (const name of ['volumechange', 'play', 'pause']) video.addEventListener(name, updateControls);
  // A stream without a picture (its metadata is loaded and it has no video size) shows the audio view.
  const updateAudioView = (): void => {
    audioView.hidden = !(video.readyState >= HTMLMediaElement.HAVE_METADATA && video.videoWidth === 0);
  };
  for (const name of AUDIO_VIEW_EVENTS) video.addEventListener(name, updateAudioView);

  const latencyTimer = setInterval(() => {
    const seconds = player.latency();
    latency.textContent = seconds === null ? 'Latency —' : `Latency ${seconds.toFixed(1)} s`;
  }, LATENCY_MS);

  video.muted = true;
  setState('loading');
  if (!canPlayHls(video)) setState('error', 'This browser cannot play the stream.');
  else void check();

  return () => {
    stopped = true;
    aborter.abort();
    clearTimeout(pollTimer);
    clearInterval(latencyTimer);
    clearTimeout(noteTimer);
    realtime.removeEventListener('click', onRealtime);
    unmute.removeEventListener('click', onUnmute);
    fullscreen.removeEventListener('click', onFullscreen);
    for (const name of ['volumechange', 'play', 'pause']) video.removeEventListener(name, updateControls);
    for (const name of AUDIO_VIEW_EVENTS) video.removeEventListener(name, updateAudioView);
    menu.destroy();
    showDvrPreviews(undefined);
    dvrBar.destroy();
    player.stop();
    whep.stop();
    unmountChat?.();
    overlayFeed?.stop();
    overlayView?.destroy();
  };
}

startWatchPage();
