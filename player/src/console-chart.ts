// A small canvas line chart of one time series (last N minutes), with its latest value as the caption.
import { el } from './dom.ts';

/** One point of a series. */
export interface ChartPoint {
  at: number;
  value: number;
}

/** Options of a {@link LineChart}. */
export interface LineChartOptions {
  title: string;
  unit: string;
  color: string;
  /** Shown time window. */
  windowMs?: number;
  /** Digits after the decimal point in the caption. */
  digits?: number;
  /** Smallest top of the y axis (so a flat line is not drawn at the top). */
  minMax?: number;
}

const MAX_POINTS = 3600;
/** Smallest shown time window. */
const MIN_WINDOW_MS = 30_000;

/** A line chart in a figure: title, latest value, canvas. */
export class LineChart {
  /** The figure to insert into the page. */
  readonly root: HTMLElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly value: HTMLElement;
  private points: ChartPoint[] = [];
  private readonly observer: ResizeObserver;

  constructor(private readonly o: LineChartOptions) {
    this.canvas = el('canvas', { className: 'chart-canvas', attrs: { role: 'img', 'aria-label': `${o.title} chart` } });
    this.value = el('span', { className: 'chart-value', text: '—' });
    this.root = el('figure', { className: 'chart' }, [
      el('figcaption', {}, [el('span', { className: 'chart-title', text: o.title }), this.value]),
      this.canvas,
    ]);
    this.observer = new ResizeObserver(() => this.draw());
    this.observer.observe(this.canvas);
  }

  /** Adds points (any order) and redraws. */
  add(points: readonly ChartPoint[]): void {
    if (points.length === 0) return;
    this.points.push(...points);
    this.points.sort((a, b) => a.at - b.at);
    if (this.points.length > MAX_POINTS) this.points.splice(0, this.points.length - MAX_POINTS);
    const last = this.points[this.points.length - 1]!;
    this.value.textContent = `${last.value.toFixed(this.o.digits ?? 0)} ${this.o.unit}`;
    this.root.dataset.latest = String(last.value);
    this.root.dataset.points = String(this.points.length);
    this.draw();
  }

  /** Stops observing the canvas size. */
  destroy(): void {
    this.observer.disconnect();
  }

  private draw(): void {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth;
    const h = c.clientHeight;
    if (w === 0 || h === 0) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const ctx = c.getContext('2d');
    if (ctx === null) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const now = Date.now();
    // The window grows with the data, from one minute up to windowMs, so a young stream fills the chart.
    const first = this.points[0]?.at ?? now;
    const windowMs = Math.min(this.o.windowMs ?? 5 * 60_000, Math.max(MIN_WINDOW_MS, now - first));
    const from = now - windowMs;
    const shown = this.points.filter((p) => p.at >= from);
    const max = Math.max(this.o.minMax ?? 1, ...shown.map((p) => p.value)) * 1.15;
    const pad = { l: 4, r: 4, t: 14, b: 4 };
    const x = (at: number) => pad.l + ((at - from) / windowMs) * (w - pad.l - pad.r);
    const y = (v: number) => h - pad.b - (v / max) * (h - pad.t - pad.b);

    ctx.strokeStyle = 'rgba(255,255,255,0.08)';
    ctx.lineWidth = 1;
    for (const f of [0.25, 0.5, 0.75, 1]) {
      const yy = Math.round(y((max * f) / 1.15)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(pad.l, yy);
      ctx.lineTo(w - pad.r, yy);
      ctx.stroke();
    }
    ctx.fillStyle = 'rgba(255,255,255,0.45)';
    ctx.font = '10px system-ui, sans-serif';
    ctx.fillText(`${(max / 1.15).toFixed(this.o.digits ?? 0)} ${this.o.unit}`, pad.l + 2, 10);
    if (shown.length === 0) {
      ctx.fillText('no data yet', w / 2 - 25, h / 2);
      return;
    }
    ctx.strokeStyle = this.o.color;
    ctx.lineWidth = 2;
    ctx.lineJoin = 'round';
    ctx.beginPath();
    shown.forEach((p, i) => (i === 0 ? ctx.moveTo(x(p.at), y(p.value)) : ctx.lineTo(x(p.at), y(p.value))));
    ctx.stroke();
    ctx.globalAlpha = 0.15;
    ctx.fillStyle = this.o.color;
    ctx.lineTo(x(shown[shown.length - 1]!.at), h - pad.b);
    ctx.lineTo(x(shown[0]!.at), h - pad.b);
    ctx.closePath();
    ctx.fill();
    ctx.globalAlpha = 1;
  }
}
