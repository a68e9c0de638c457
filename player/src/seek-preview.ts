// Seek previews over a seek bar: given the URL of a thumbnails WebVTT (cues whose text is `sprite.jpg#xywh=x,y,w,h`,
// W3C Media Fragments §4.2.2, as origin/thumbnails/layout.ts writes them and players expect), shows the tile of the
// time under the pointer above the bar, with that time. Self-contained: works on any element laid out as a
// horizontal timeline (an <input type="range">, the DVR bar), told how a pointer position maps to media time.
// The parsing and lookup are pure (unit tested); only attachSeekPreview touches the DOM.

/** One preview: from `startSec` to `endSec`, the region (x, y, w, h) of sprite `url` (absolute). */
export interface PreviewCue {
  startSec: number;
  endSec: number;
  url: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

const TIMING = /^(?:(\d+):)?(\d{2}):(\d{2})\.(\d{3})\s+-->\s+(?:(\d+):)?(\d{2}):(\d{2})\.(\d{3})/;

function seconds(h: string | undefined, m: string, s: string, ms: string): number {
  return Number(h ?? 0) * 3600 + Number(m) * 60 + Number(s) + Number(ms) / 1000;
}

/** The cues of a thumbnails WebVTT, sprite URLs resolved against `baseUrl` (the VTT's URL); other cues are skipped. */
export function parsePreviewVtt(text: string, baseUrl: string): PreviewCue[] {
  if (!/^(\uFEFF)?WEBVTT(\s|$)/.test(text)) throw new Error('not a WebVTT file');
  const cues: PreviewCue[] = [];
  for (const block of text.replace(/\r\n?/g, '\n').split(/\n{2,}/)) {
    const lines = block.split('\n').filter((l) => l !== '');
    const i = lines.findIndex((l) => l.includes('-->'));
    if (i === -1) continue;
    const t = TIMING.exec(lines[i]!);
    const payload = lines[i + 1];
    if (!t || payload === undefined) continue;
    const hash = payload.lastIndexOf('#xywh=');
    if (hash === -1) continue;
    const xywh = payload
      .slice(hash + 6)
      .split(',')
      .map((n) => Number(n));
    if (xywh.length !== 4 || xywh.some((n) => !Number.isFinite(n) || n < 0)) continue;
    let url: string;
    try {
      url = new URL(payload.slice(0, hash), baseUrl).href;
    } catch {
      continue;
    }
    const [x, y, w, h] = xywh as [number, number, number, number];
    cues.push({ startSec: seconds(t[1], t[2]!, t[3]!, t[4]!), endSec: seconds(t[5], t[6]!, t[7]!, t[8]!), url, x, y, w, h });
  }
  return cues.sort((a, b) => a.startSec - b.startSec);
}

/** The cue showing at `sec` (cues sorted by start): the last one starting at or before it, if it has not ended. */
export function cueAt(cues: readonly PreviewCue[], sec: number): PreviewCue | undefined {
  let lo = 0;
  let hi = cues.length - 1;
  let found: PreviewCue | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cues[mid]!.startSec <= sec) {
      found = cues[mid];
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found && sec < found.endSec + 1e-6 ? found : undefined;
}

/** `m:ss` or `h:mm:ss`. */
export function clock(sec: number): string {
  const s = Math.max(0, Math.floor(sec));
  const pad = (n: number) => String(n).padStart(2, '0');
  return s >= 3600 ? `${Math.floor(s / 3600)}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}` : `${Math.floor(s / 60)}:${pad(s % 60)}`;
}

/** What attachSeekPreview needs. */
export interface SeekPreviewOptions {
  /** The timeline element: its width is the time range. */
  bar: HTMLElement;
  /** The thumbnails WebVTT. */
  vttUrl: string;
  /** Media time at a fraction (0..1) of the bar's width (e.g. fraction × duration, or a DVR window's start + …). */
  timeAt(fraction: number): number;
  /**
   * The VTT's cue time of a media time, when they differ (a live DVR window: cue times count from the broadcast's
   * start, media time from the player's); `vttEndSec` is where the VTT's last cue ends. Default: the same.
   */
  cueTime?(mediaSec: number, vttEndSec: number): number;
  /** The label shown with the tile for a media time (default: its clock time, as on a VOD seek bar). */
  label?(mediaSec: number): string;
  /** Reload the VTT this often while attached (a live one grows); 0 or absent: load it once. */
  refreshMs?: number;
}

/** A preview attached to a bar. */
export interface SeekPreview {
  /** Loads the VTT again now. */
  refresh(): Promise<void>;
  /** Removes the preview and its listeners. */
  destroy(): void;
}

/** Shows the preview tile (and the time) above `bar` while the pointer is over it. */
export function attachSeekPreview(o: SeekPreviewOptions): SeekPreview {
  let cues: PreviewCue[] = [];
  let destroyed = false;
  const box = document.createElement('div');
  box.className = 'seek-preview';
  box.hidden = true;
  box.setAttribute('aria-hidden', 'true');
  const picture = document.createElement('div');
  picture.className = 'seek-preview-image';
  const label = document.createElement('span');
  label.className = 'seek-preview-time';
  box.append(picture, label);
  const parent = o.bar.parentElement ?? document.body;
  if (getComputedStyle(parent).position === 'static') parent.style.position = 'relative';
  parent.append(box);

  const load = async (): Promise<void> => {
    try {
      const r = await fetch(o.vttUrl, { cache: 'no-cache' });
      if (!r.ok || destroyed) return;
      cues = parsePreviewVtt(await r.text(), new URL(o.vttUrl, window.location.href).href);
    } catch {
      // No previews (yet): the bar works without them.
    }
  };
  void load();
  const timer = o.refreshMs ? setInterval(() => void load(), o.refreshMs) : undefined;

  const show = (ev: PointerEvent) => {
    const rect = o.bar.getBoundingClientRect();
    if (rect.width <= 0) return;
    const fraction = Math.min(1, Math.max(0, (ev.clientX - rect.left) / rect.width));
    const t = o.timeAt(fraction);
    if (!Number.isFinite(t)) return;
    const cue = cueAt(cues, o.cueTime ? o.cueTime(t, cues.at(-1)?.endSec ?? 0) : t);
    label.textContent = o.label ? o.label(t) : clock(t);
    picture.hidden = cue === undefined;
    if (cue) {
      picture.style.width = `${cue.w}px`;
      picture.style.height = `${cue.h}px`;
      picture.style.backgroundImage = `url("${cue.url.replace(/["\\]/g, '')}")`;
      picture.style.backgroundPosition = `${-cue.x}px ${-cue.y}px`;
    }
    box.hidden = false;
    // Centred on the pointer, kept within the parent.
    const parentRect = parent.getBoundingClientRect();
    const width = box.offsetWidth;
    const left = Math.min(Math.max(0, ev.clientX - parentRect.left - width / 2), Math.max(0, parentRect.width - width));
    box.style.left = `${left}px`;
    box.style.top = `${rect.top - parentRect.top - box.offsetHeight - 6}px`;
  };
  const hide = () => {
    box.hidden = true;
  };
  o.bar.addEventListener('pointermove', show);
  o.bar.addEventListener('pointerleave', hide);
  o.bar.addEventListener('pointercancel', hide);

  return {
    refresh: load,
    destroy() {
      destroyed = true;
      clearInterval(timer);
      o.bar.removeEventListener('pointermove', show);
      o.bar.removeEventListener('pointerleave', hide);
      o.bar.removeEventListener('pointercancel', hide);
      box.remove();
    },
  };
}
