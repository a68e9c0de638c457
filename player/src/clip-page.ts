// Entry of clip.html (/clip/<clipId>): plays one clip, a short VOD cut from a recording (control/clips.ts), from its
// hlsUrl through the edges, with the seek bar and its duration.
import { ApiError, getClip } from './api.ts';
import { byId } from './dom.ts';
import { LivePlayer } from './live-player.ts';
import { QualityMenu } from './quality-menu.ts';
import { installHook, pushHookError, setHookState } from './test-hook.ts';
import './style.css';

/** Reads the clip id from /clip/<clipId> (or ?id= when served as /clip.html in development). */
export function clipIdFromLocation(loc: Location): string {
  const match = /^\/clip\/([^/]+)\/?$/.exec(loc.pathname);
  if (match?.[1] !== undefined) return decodeURIComponent(match[1]);
  return new URLSearchParams(loc.search).get('id') ?? '';
}

function fmt(sec: number): string {
  const s = Math.round(sec);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function start(): void {
  const video = byId<HTMLVideoElement>('video');
  const overlay = byId('overlay');
  const title = byId('title');
  const description = byId('description');
  const say = (text: string) => {
    overlay.textContent = text;
    overlay.hidden = text === '';
  };
  const player = new LivePlayer(video, {
    onPlaying: () => {
      setHookState(hook, 'playing');
      say('');
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
      setHookState(hook, 'ended');
      say('End of the clip.');
    },
    onFailed: () => {
      setHookState(hook, 'error');
      say('This clip cannot be played (it may have been deleted).');
    },
    onError: (message) => pushHookError(hook, message),
    onAutoplayBlocked: () => say(''),
  });
  const hook = installHook(() => player.hls);
  hook.replay = true;
  const menu = new QualityMenu(byId<HTMLSelectElement>('quality'), (level) => {
    player.setLevel(level);
    menu.update(level === -1, hook.currentLevel);
  });

  const id = clipIdFromLocation(window.location);
  getClip(id).then(
    (clip) => {
      document.title = `${clip.title} — onair`;
      title.textContent = clip.title;
      description.textContent = `${fmt(clip.durationSec)} clip, ${fmt(clip.startSec)}–${fmt(clip.endSec)} into the broadcast.`;
      player.start(new URL(clip.hlsUrl, window.location.href).href);
    },
    (err: unknown) => {
      setHookState(hook, 'error');
      say(err instanceof ApiError && err.status === 404 ? 'There is no such clip.' : 'Cannot load the clip.');
    },
  );
}

start();
