// Browser side of the latency bench's real-time setup: loaded into onair's own watch page (an init script imports it
// from the bench page server before the page's own script runs), it reads the strip of every frame the page's
// <video id="video"> displays, whatever plays it (WHEP with ?realtime=1, or LL-HLS after a fallback: the frames are
// counted per window.__onair.mode). The time to first frame counts from the navigation.
import { emptyState, readFrames } from './strip-reader.ts';

const state = emptyState();
window.__latencyBench = {
  state,
  start: () => {
    throw new Error('the watch page plays by itself; nothing to start');
  },
};

function attach(): void {
  const video = document.getElementById('video') as HTMLVideoElement | null;
  if (!video) {
    state.errors.push('no <video id="video"> on the page');
    return;
  }
  readFrames(video, state, 0, () => ({ playerLatencyMs: -1, ingestToDisplayMs: -1, mode: window.__onair?.mode ?? 'none' }));
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', attach, { once: true });
else attach();
