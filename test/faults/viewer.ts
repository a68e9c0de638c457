// A measuring viewer for the fault suite and bench:origins: Chromium (Debian's, through playwright-core) on the real
// watch page /watch/<slug>, instrumented from outside. An init script, installed before the page's own scripts,
// watches the <video> element and every hls.js instance the page creates (window.__onair.hls, the page's test hook)
// and records stalls, fatal errors, discontinuities and the playback position with Date.now() times, so that Node
// can cut "from this mark until N seconds later" out of the record (measure.ts).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { summarizeWindow, type ViewerRecord, type WindowSummary } from './measure.ts';

const root = join(import.meta.dirname, '..', '..');

/** No currentTime progress for this long counts as a frozen picture (the page samples every 100 ms). */
export const FREEZE_MS = 500;

/** The page-side recorder (runs in the browser; must not reference anything outside itself). */
function installRecorder(freezeMs: number): void {
  type Rec = ViewerRecord & { marks: [number, string][] };
  const rec: Rec = {
    now: Date.now(),
    waits: [],
    freezes: [],
    fatal: [],
    errors: [],
    ccChanges: [],
    rebuilds: [],
    states: [],
    position: 0,
    lastProgressAt: Date.now(),
    marks: [],
  };
  type HlsLike = { on(event: string, fn: (e: string, data: Record<string, unknown>) => void): void };
  type Hook = { hls?: HlsLike; state?: string };
  const w = window as unknown as { __faultViewer: Rec; __onair?: Hook };
  w.__faultViewer = rec;
  let video: HTMLVideoElement | null = null;
  let hls: HlsLike | undefined;
  let instances = 0;
  let lastState: string | undefined;
  let lastTime = -1;
  const openWait = () => rec.waits.find((i) => i.end === undefined);
  const openFreeze = () => rec.freezes.find((i) => i.end === undefined);
  const onWaiting = () => {
    if (rec.firstPlayingAt !== undefined && !openWait()) rec.waits.push({ start: Date.now() });
  };
  const onPlaying = () => {
    const now = Date.now();
    rec.firstPlayingAt ??= now;
    const o = openWait();
    if (o) o.end = now;
  };
  const attachHls = (h: HlsLike) => {
    hls = h;
    instances++;
    if (instances > 1) rec.rebuilds.push(Date.now());
    let cc: number | undefined;
    h.on('hlsError', (_e, data) => {
      const what = `${String(data.type)}/${String(data.details)}`;
      if (data.fatal === true) rec.fatal.push([Date.now(), what]);
      else {
        rec.errors.push([Date.now(), what]);
        if (rec.errors.length > 200) rec.errors.shift();
      }
    });
    h.on('hlsFragChanged', (_e, data) => {
      const frag = data.frag as { cc?: number } | undefined;
      const next = frag?.cc;
      if (typeof next !== 'number') return;
      if (cc !== undefined && next !== cc) rec.ccChanges.push([Date.now(), cc, next]);
      cc = next;
    });
  };
  setInterval(() => {
    const now = Date.now();
    const v = document.querySelector('video');
    if (v && v !== video) {
      video = v;
      v.addEventListener('waiting', onWaiting);
      v.addEventListener('playing', onPlaying);
    }
    const hook = w.__onair;
    if (hook?.hls && hook.hls !== hls) attachHls(hook.hls);
    const state = hook?.state;
    if (state !== undefined && state !== lastState) {
      lastState = state;
      rec.states.push([now, state]);
    }
    if (!video || rec.firstPlayingAt === undefined) return;
    const t = video.currentTime;
    // Paused by the viewer (the page still says playing) is no stall; a page that stopped its player (offline,
    // loading, error) is one, paused or not.
    const viewerPaused = video.paused && (state === undefined || state === 'playing');
    if (t !== lastTime || viewerPaused) {
      lastTime = t;
      rec.lastProgressAt = now;
      rec.position = t;
      const f = openFreeze();
      if (f) f.end = now;
    } else if (now - rec.lastProgressAt >= freezeMs && !openFreeze()) {
      rec.freezes.push({ start: rec.lastProgressAt });
    }
  }, 100);
}

/** A running measuring viewer. */
export interface Viewer {
  readonly page: Page;
  /** Records a named instant (Date.now()) and returns it. */
  mark(label: string): number;
  /** The instant of a mark, or undefined. */
  markAt(label: string): number | undefined;
  /** The raw record so far. */
  record(): Promise<ViewerRecord>;
  /** What the viewer saw from `from` (a mark's label or a time) until `untilMs` (default now). */
  snapshot(from?: string | number, untilMs?: number): Promise<WindowSummary>;
  /** Resolves once the video has advanced within the last second (throws after `timeoutMs`). */
  waitPlaying(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Opens `watchUrl` (…/watch/<slug>) in a new page of `browser`, instrumented; resolves once it loaded. */
export async function openViewer(browser: Browser, watchUrl: string): Promise<Viewer> {
  const page = await browser.newPage();
  // As source text: tsx (esbuild keepNames) may wrap the function's inner names in __name(), absent from the page.
  await page.addInitScript({ content: `var __name = (f) => f; (${installRecorder.toString()})(${FREEZE_MS});` });
  await page.goto(watchUrl, { waitUntil: 'load' });
  const marks = new Map<string, number>();
  const record = () => page.evaluate(() => ({ ...(window as unknown as { __faultViewer: ViewerRecord }).__faultViewer, now: Date.now() }));
  const viewer: Viewer = {
    page,
    mark(label) {
      const t = Date.now();
      marks.set(label, t);
      return t;
    },
    markAt: (label) => marks.get(label),
    record,
    async snapshot(from = 0, untilMs) {
      const t = typeof from === 'number' ? from : marks.get(from);
      if (t === undefined) throw new Error(`no mark ${String(from)}`);
      return summarizeWindow(await record(), t, untilMs);
    },
    async waitPlaying(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const r = await record();
        if (r.firstPlayingAt !== undefined && r.now - r.lastProgressAt < 1000) return;
        if (Date.now() > deadline)
          throw new Error(
            `viewer not playing after ${timeoutMs} ms (states ${JSON.stringify(r.states)}, fatal ${JSON.stringify(r.fatal)})`,
          );
        await new Promise((res) => setTimeout(res, 250));
      }
    },
    close: () => page.close().catch(() => undefined),
  };
  return viewer;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(full));
    else newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

/** Builds the player (vite, into dist/player, which control nodes serve) when missing or older than player/src. */
export function ensurePlayerBuilt(): void {
  const built = join(root, 'dist', 'player', 'watch.html');
  if (existsSync(built) && statSync(built).mtimeMs >= newestMtime(join(root, 'player'))) return;
  execFileSync(process.execPath, [join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', 'player/vite.config.ts'], {
    cwd: root,
    stdio: 'pipe',
  });
}
