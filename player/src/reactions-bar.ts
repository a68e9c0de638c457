// Reaction buttons with a burst animation of the aggregated counts, like/dislike with totals, and the viewer count.
import { el } from './dom.ts';

/** The reaction set of protocol v1: name → emoji. */
export const REACTION_EMOJI: Readonly<Record<string, string>> = {
  heart: '❤️',
  clap: '👏',
  laugh: '😂',
  wow: '😮',
  fire: '🔥',
  party: '🎉',
};

/** Most floating emoji shown per burst, whatever the count. */
const MAX_FLOATERS = 12;

/** The bar under the video. */
export class ReactionsBar {
  private readonly likeBtn: HTMLButtonElement;
  private readonly dislikeBtn: HTMLButtonElement;
  private readonly viewers: HTMLElement;
  private readonly burst: HTMLElement;
  private mine: 'like' | 'dislike' | 'none' = 'none';

  constructor(
    private readonly root: HTMLElement,
    burstLayer: HTMLElement,
    actions: { react(name: string): void; like(value: 'like' | 'dislike' | 'none'): void },
  ) {
    this.burst = burstLayer;
    const buttons = Object.entries(REACTION_EMOJI).map(([name, emoji]) => {
      const b = el('button', { className: 'reaction', text: emoji, attrs: { type: 'button', 'aria-label': name, 'data-reaction': name } });
      b.addEventListener('click', () => {
        actions.react(name);
        this.float(emoji, 1);
      });
      return b;
    });
    this.likeBtn = el('button', { className: 'vote like', text: '👍 0', attrs: { type: 'button', 'aria-pressed': 'false' } });
    this.dislikeBtn = el('button', { className: 'vote dislike', text: '👎 0', attrs: { type: 'button', 'aria-pressed': 'false' } });
    this.likeBtn.addEventListener('click', () => actions.like(this.mine === 'like' ? 'none' : 'like'));
    this.dislikeBtn.addEventListener('click', () => actions.like(this.mine === 'dislike' ? 'none' : 'dislike'));
    this.viewers = el('span', { className: 'viewer-count', text: '' });
    root.replaceChildren(
      el('div', { className: 'reaction-buttons' }, buttons),
      el('div', { className: 'votes' }, [this.likeBtn, this.dislikeBtn]),
      this.viewers,
    );
  }

  /** Shows aggregated counts from everyone (own taps were already shown). */
  showReactions(counts: Record<string, number>): void {
    for (const [name, n] of Object.entries(counts)) {
      const emoji = REACTION_EMOJI[name];
      if (emoji && n > 0) this.float(emoji, n);
    }
  }

  setLikes(likes: number, dislikes: number, mine?: 'like' | 'dislike' | 'none'): void {
    if (mine) this.mine = mine;
    this.likeBtn.textContent = `👍 ${likes}`;
    this.dislikeBtn.textContent = `👎 ${dislikes}`;
    this.likeBtn.setAttribute('aria-pressed', String(this.mine === 'like'));
    this.dislikeBtn.setAttribute('aria-pressed', String(this.mine === 'dislike'));
  }

  setViewers(n: number): void {
    this.viewers.textContent = n > 0 ? `👁 ${n} watching` : '';
    this.viewers.dataset.count = String(n);
  }

  /** Enables or disables every control (e.g. while banned). */
  setEnabled(enabled: boolean): void {
    for (const b of this.root.querySelectorAll('button')) b.disabled = !enabled;
  }

  private float(emoji: string, count: number): void {
    const n = Math.min(MAX_FLOATERS, Math.max(1, Math.round(Math.log2(count + 1) * 2)));
    for (let i = 0; i < n; i++) {
      const f = el('span', { className: 'floater', text: emoji });
      f.style.left = `${10 + Math.random() * 80}%`;
      f.style.animationDelay = `${i * 60}ms`;
      f.addEventListener('animationend', () => f.remove());
      this.burst.append(f);
    }
  }
}
