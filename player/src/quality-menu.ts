// Quality menu: "Auto" plus one entry per rendition, labelled by height; Auto shows what plays now.
import type { LevelInfo } from './live-player.ts';
import { el } from './dom.ts';

/** Labels for the levels: "720p", or "720p 2.5 Mb/s" when two levels share a height. */
export function levelLabels(levels: readonly LevelInfo[]): string[] {
  const heights = levels.map((l) => l.height);
  return levels.map((l) => {
    const base = l.height > 0 ? `${l.height}p` : `${Math.round(l.bitrate / 1000)} kb/s`;
    const shared = l.height > 0 && heights.filter((h) => h === l.height).length > 1;
    return shared ? `${base} ${(l.bitrate / 1e6).toFixed(1)} Mb/s` : base;
  });
}

/** Drives a <select> listing Auto and the renditions (highest first). */
export class QualityMenu {
  private readonly select: HTMLSelectElement;
  private labels: string[] = [];
  private readonly onChange: () => void;

  /** `choose` receives the level index, or -1 for Auto. */
  constructor(select: HTMLSelectElement, choose: (level: number) => void) {
    this.select = select;
    this.onChange = () => choose(Number(this.select.value));
    this.select.addEventListener('change', this.onChange);
    this.setLevels([]);
  }

  /** Rebuilds the options; hides the menu when there is nothing to choose. */
  setLevels(levels: readonly LevelInfo[]): void {
    this.labels = levelLabels(levels);
    const order = levels.map((_l, i) => i).sort((a, b) => (levels[b]?.bitrate ?? 0) - (levels[a]?.bitrate ?? 0));
    this.select.replaceChildren(
      el('option', { text: 'Auto', attrs: { value: '-1' } }),
      ...order.map((i) => el('option', { text: this.labels[i] ?? '', attrs: { value: String(i) } })),
    );
    this.select.value = '-1';
    this.select.hidden = levels.length < 2;
  }

  /** Shows the level now playing: in the Auto entry when automatic, else as the selection. */
  update(auto: boolean, playing: number): void {
    const autoOption = this.select.options[0];
    if (autoOption !== undefined) {
      const label = this.labels[playing];
      autoOption.textContent = auto && label !== undefined ? `Auto (${label})` : 'Auto';
    }
    if (auto) this.select.value = '-1';
  }

  /** Detaches the change listener. */
  destroy(): void {
    this.select.removeEventListener('change', this.onChange);
  }
}
