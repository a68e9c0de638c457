// The end-to-end test hook: window.__onair mirrors the player, and <body data-state> its state.
import type Hls from 'hls.js';
import type { LevelInfo } from './live-player.ts';

/** The page's playback state. */
export type WatchState = 'loading' | 'offline' | 'playing' | 'ended' | 'error';

/** Shape of `window.__onair`, read by end-to-end tests. */
export interface OnairHook {
  readonly hls?: Hls;
  state: WatchState;
  levels: LevelInfo[];
  currentLevel: number;
  errors: string[];
  /** Playing the event's recording (VOD), not the live stream. */
  replay: boolean;
  /** What plays: LL-HLS (the default) or real time over WHEP. */
  mode: 'hls' | 'whep';
  /** Why real time was last refused or lost (the server's error code, `failed`, `no_media`, `lost`). */
  realtimeRefused?: string;
}

declare global {
  interface Window {
    /** Test hook; see {@link OnairHook}. */
    __onair?: OnairHook;
  }
}

const MAX_ERRORS = 100;

/** Creates the hook (its `hls` read live through `getHls`), installs it on `window` and returns it. */
export function installHook(getHls: () => Hls | undefined): OnairHook {
  const hook: OnairHook = { state: 'loading', levels: [], currentLevel: -1, errors: [], replay: false, mode: 'hls' };
  Object.defineProperty(hook, 'hls', { get: getHls, enumerable: true });
  window.__onair = hook;
  document.body.dataset.state = hook.state;
  return hook;
}

/** Sets the state in the hook and on <body data-state>. */
export function setHookState(hook: OnairHook, state: WatchState): void {
  hook.state = state;
  document.body.dataset.state = state;
}

/** Records an error message, keeping the most recent ones. */
export function pushHookError(hook: OnairHook, message: string): void {
  hook.errors.push(message);
  if (hook.errors.length > MAX_ERRORS) hook.errors.splice(0, hook.errors.length - MAX_ERRORS);
}
