// Browser side of the latency bench's WHEP peer setup (served by page-server.ts): a bare receive-only
// RTCPeerConnection (video and audio) whose offer is POSTed to a WHEP URL without a token (MediaMTX's WHEP); the
// answer's tracks play in the <video>, whose strip is read per displayed frame like the other pages. The time to
// first frame counts from start().
import { emptyState, readFrames } from './strip-reader.ts';

const state = emptyState();

async function start(url: string): Promise<void> {
  const video = document.getElementById('video') as HTMLVideoElement;
  readFrames(video, state, performance.now(), () => ({ playerLatencyMs: -1, ingestToDisplayMs: -1, mode: 'whep' }));
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const stream = new MediaStream();
  pc.addEventListener('track', (e) => {
    stream.addTrack(e.track);
    video.srcObject = stream;
  });
  pc.addEventListener('connectionstatechange', () => {
    if (pc.connectionState === 'failed') state.errors.push('connection failed');
  });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise<void>((resolve) => {
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    setTimeout(resolve, 2000);
    if (pc.iceGatheringState === 'complete') resolve();
  });
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: pc.localDescription!.sdp });
  if (r.status !== 201) throw new Error(`WHEP POST answered ${r.status}: ${await r.text()}`);
  await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
  video.play().catch((err: unknown) => state.errors.push(`play: ${String(err)}`));
}

window.__latencyBench = {
  state,
  start: (url) =>
    void start(url).catch((err: unknown) => {
      state.errors.push(String(err));
    }),
};
