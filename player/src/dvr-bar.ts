// The DVR seek bar of a live event: the range a viewer can seek back in (what the live playlist offers: the DVR
// window plus the live window), where playback is in it, how far behind live that is, and a "Live" button back to
// the low-latency edge. It talks to the player only through DvrTarget, and lets other modules (e.g. seek-preview
// thumbnails) hook onto it: `element`, `timeAt(clientX)` and `onHover`.

/** What the bar drives (a LivePlayer satisfies it). */
export interface DvrTarget {
  /** The seekable range in media time (s), or null before the playlist is known. */
  dvrRange(): { start: number; end: number } | null;
  /** The live sync position (where "Live" goes), in media time; null when unknown. */
  liveEdge(): number | null;
  /** The current media time. */
  currentTime(): number;
  /** The wall-clock time (ms) of the current position (EXT-X-PROGRAM-DATE-TIME), when the playlist has it. */
  playingDateMs(): number | null;
  /** The viewer chose a position: stay there (no catch-up towards live) until goLive(). */
  seekTo(t: number): void;
  /** Back to the low-latency live edge, with catch-up on again. */
  goLive(): void;
  /** True while the viewer holds a position behind live (after seekTo, until goLive). */
  readonly pinned: boolean;
}

/** A hover over the bar: the media time under the pointer, its fraction of the range and the x in the bar (px). */
export interface DvrHover {
  time: number;
  fraction: number;
  x: number;
  /** Wall-clock time (ms) of that point, when the playlist has PROGRAM-DATE-TIME. */
  dateMs: number | null;
}

/** The bar is shown once the seekable range is at least this long (s). */
export const MIN_DVR_RANGE_SEC = 10;
/** Within this many seconds of the live edge (and not pinned) the position counts as live. */
const AT_LIVE_SEC = 3;

/** "−1:05" style: how far behind live `sec` is, for the label. */
export function formatBehind(sec: number): string {
  const s = Math.max(0, Math.round(sec));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return `−${h > 0 ? `${h}:${String(m).padStart(2, '0')}` : String(m)}:${String(r).padStart(2, '0')}`;
}

/** The media time at `fraction` (0..1) of a range, clamped. */
export function timeAtFraction(range: { start: number; end: number }, fraction: number): number {
  const f = Math.min(1, Math.max(0, fraction));
  return range.start + f * (range.end - range.start);
}

/** The seek bar. Create it with a container (it appends its own elements) and call destroy() when done. */
export class DvrBar {
  /** The bar's root element (a thumbnail preview may position itself against it). */
  readonly element: HTMLDivElement;
  private readonly range: HTMLInputElement;
  private readonly live: HTMLButtonElement;
  private readonly behind: HTMLSpanElement;
  private readonly target: DvrTarget;
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly hoverListeners = new Set<(h: DvrHover | null) => void>();
  private dragging = false;
  private enabled = false;

  constructor(container: HTMLElement, target: DvrTarget, refreshMs = 250) {
    this.target = target;
    const el = document.createElement('div');
    el.className = 'dvr-bar';
    el.id = 'dvr';
    el.hidden = true;
    const range = document.createElement('input');
    range.type = 'range';
    range.className = 'dvr-range';
    range.id = 'dvr-range';
    range.min = '0';
    range.max = '1000';
    range.step = '1';
    range.setAttribute('aria-label', 'Seek in the live broadcast');
    const behind = document.createElement('span');
    behind.className = 'dvr-behind';
    behind.id = 'dvr-behind';
    const live = document.createElement('button');
    live.type = 'button';
    live.className = 'dvr-live';
    live.id = 'dvr-live';
    live.textContent = 'Live';
    el.append(range, behind, live);
    container.append(el);
    this.element = el;
    this.range = range;
    this.live = live;
    this.behind = behind;

    range.addEventListener('input', this.onInput);
    range.addEventListener('change', this.onChange);
    range.addEventListener('pointermove', this.onPointerMove);
    range.addEventListener('pointerleave', this.onPointerLeave);
    live.addEventListener('click', this.onLive);
    this.timer = setInterval(() => this.refresh(), refreshMs);
  }

  /** The timeline itself (the range input): its width is the seekable range. */
  get track(): HTMLInputElement {
    return this.range;
  }

  /** Shows the bar (while live HLS plays) or hides it (replay, real time, offline). */
  setEnabled(on: boolean): void {
    this.enabled = on;
    this.refresh();
  }

  /** The media time under horizontal position `clientX` (px, viewport), or null without a range. */
  timeAt(clientX: number): number | null {
    const r = this.target.dvrRange();
    if (!r) return null;
    const box = this.range.getBoundingClientRect();
    if (box.width <= 0) return null;
    return timeAtFraction(r, (clientX - box.left) / box.width);
  }

  /** Calls `listener` as the pointer moves over the bar (null when it leaves); returns the unsubscribe function. */
  onHover(listener: (h: DvrHover | null) => void): () => void {
    this.hoverListeners.add(listener);
    return () => this.hoverListeners.delete(listener);
  }

  /** Updates the bar from the player (also runs on a timer). */
  refresh(): void {
    const r = this.target.dvrRange();
    const show = this.enabled && r !== null && r.end - r.start >= MIN_DVR_RANGE_SEC;
    this.element.hidden = !show;
    if (!show || !r) return;
    const t = this.target.currentTime();
    const edge = this.target.liveEdge() ?? r.end;
    const behindSec = Math.max(0, edge - t);
    const atLive = !this.target.pinned && behindSec <= AT_LIVE_SEC;
    if (!this.dragging) this.range.value = String(Math.round(((t - r.start) / Math.max(1e-3, r.end - r.start)) * 1000));
    this.behind.textContent = atLive ? '' : formatBehind(behindSec);
    this.live.setAttribute('aria-pressed', String(atLive));
    this.element.dataset.live = String(atLive);
    this.element.dataset.behind = behindSec.toFixed(1);
  }

  destroy(): void {
    clearInterval(this.timer);
    this.range.removeEventListener('input', this.onInput);
    this.range.removeEventListener('change', this.onChange);
    this.range.removeEventListener('pointermove', this.onPointerMove);
    this.range.removeEventListener('pointerleave', this.onPointerLeave);
    this.live.removeEventListener('click', this.onLive);
    this.hoverListeners.clear();
    this.element.remove();
  }

  private readonly onInput = (): void => {
    this.dragging = true;
  };

  private readonly onChange = (): void => {
    this.dragging = false;
    const r = this.target.dvrRange();
    if (!r) return;
    const t = timeAtFraction(r, Number(this.range.value) / 1000);
    const edge = this.target.liveEdge() ?? r.end;
    // Dropped at the live end of the bar: that is "Live".
    if (edge - t <= AT_LIVE_SEC) this.target.goLive();
    else this.target.seekTo(t);
    this.refresh();
  };

  private readonly onLive = (): void => {
    this.target.goLive();
    this.refresh();
  };

  private readonly onPointerMove = (e: PointerEvent): void => {
    const r = this.target.dvrRange();
    const time = this.timeAt(e.clientX);
    if (!r || time === null) return;
    const box = this.range.getBoundingClientRect();
    const nowDate = this.target.playingDateMs();
    const dateMs = nowDate === null ? null : nowDate + (time - this.target.currentTime()) * 1000;
    const hover: DvrHover = { time, fraction: (time - r.start) / Math.max(1e-3, r.end - r.start), x: e.clientX - box.left, dateMs };
    for (const l of this.hoverListeners) l(hover);
  };

  private readonly onPointerLeave = (): void => {
    for (const l of this.hoverListeners) l(null);
  };
}
