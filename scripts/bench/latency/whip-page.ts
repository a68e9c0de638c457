// Browser side of the latency bench's WHIP setup (served by page-server.ts): a canvas with a moving picture and,
// in its bottom strip, the wall clock of the moment each frame is drawn (the same strip as the ffmpeg publisher's),
// captured with a tone and published over WHIP the way a browser studio would. The player page reads it back.
import { encodeStamp, stripRows, STRIP_CELLS } from '../stamp.ts';

/** Where the publisher stands; read by latency.ts through page.evaluate. */
export interface WhipPublisherState {
  /** The WHIP session URL once the answer came (201). */
  location?: string;
  /** Frames drawn. */
  frames: number;
  /** WebRTC connection state. */
  connectionState: string;
  error?: string;
}

declare global {
  interface Window {
    __whipPublisher?: {
      start(whipUrl: string, key: string, width: number, height: number, fps: number): Promise<void>;
      state: WhipPublisherState;
    };
  }
}

const state: WhipPublisherState = { frames: 0, connectionState: 'new' };

/** Draws one frame: moving bars above, the stamp of `nowMs` in the strip. */
function draw(ctx: CanvasRenderingContext2D, width: number, height: number, nowMs: number): void {
  const { top, height: stripH } = stripRows(height);
  const shift = (nowMs / 10) % width;
  const colours = ['#c0c0c0', '#c0c000', '#00c0c0', '#00c000', '#c000c0', '#c00000', '#0000c0'];
  const bar = width / colours.length;
  colours.forEach((c, i) => {
    ctx.fillStyle = c;
    ctx.fillRect((i * bar + shift) % width, 0, bar + 1, top);
    ctx.fillRect(((i * bar + shift) % width) - width, 0, bar + 1, top);
  });
  ctx.fillStyle = '#000';
  ctx.font = `${Math.round(height / 10)}px sans-serif`;
  ctx.fillText(new Date(nowMs).toISOString().slice(11, 23), width / 20, top / 2);
  const cell = width / STRIP_CELLS;
  encodeStamp(nowMs).forEach((bit, i) => {
    ctx.fillStyle = bit ? '#fff' : '#000';
    ctx.fillRect(Math.floor(i * cell), top, Math.ceil(cell), stripH);
  });
}

async function start(whipUrl: string, key: string, width: number, height: number, fps: number): Promise<void> {
  const canvas = document.getElementById('canvas') as HTMLCanvasElement;
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d')!;
  const tick = () => {
    draw(ctx, width, height, Date.now());
    state.frames++;
  };
  tick();
  setInterval(tick, 1000 / fps);
  const stream = canvas.captureStream(fps);
  const audio = new AudioContext();
  const tone = audio.createOscillator();
  tone.frequency.value = 440;
  const out = audio.createMediaStreamDestination();
  tone.connect(out);
  tone.start();
  await audio.resume();
  const pc = new RTCPeerConnection();
  pc.addEventListener('connectionstatechange', () => (state.connectionState = pc.connectionState));
  const video = pc.addTransceiver(stream.getVideoTracks()[0]!, { direction: 'sendonly' });
  pc.addTransceiver(out.stream.getAudioTracks()[0]!, { direction: 'sendonly' });
  // The strip must reach the viewer at full size: drop frames rather than resolution when the CPU is short.
  const params = video.sender.getParameters();
  params.degradationPreference = 'maintain-resolution';
  await video.sender.setParameters(params);
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise<void>((resolve) => {
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    setTimeout(resolve, 3000);
    if (pc.iceGatheringState === 'complete') resolve();
  });
  const r = await fetch(whipUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', authorization: `Bearer ${key}` },
    body: pc.localDescription!.sdp,
  });
  if (r.status !== 201) throw new Error(`WHIP POST answered ${r.status}: ${await r.text()}`);
  await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
  state.location = new URL(r.headers.get('location')!, whipUrl).href;
}

window.__whipPublisher = {
  state,
  start: (whipUrl, key, width, height, fps) =>
    start(whipUrl, key, width, height, fps).catch((err: unknown) => {
      state.error = String(err);
      throw err;
    }),
};
