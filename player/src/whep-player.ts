// Real-time playback over WHEP: a receive-only RTCPeerConnection whose offer is POSTed to /whep/<eventId> with the
// viewer's token; the answer's H.264 and Opus tracks play in the page's <video>. The watch page falls back to LL-HLS
// when the server refuses (503 whep_full, 404 not_live, 401) or no picture comes.

/** How long ICE gathering may take before the offer goes out with the candidates found. */
const GATHER_MS = 2_000;
/** How long after the answer the first decoded frame may take before real time is given up. */
const FIRST_FRAME_MS = 10_000;

/** Real time could not start or stopped: `code` is the server's error code, or `failed` / `no_media`. */
export class WhepError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** True when the browser can receive WebRTC. */
export function canPlayWhep(): boolean {
  return typeof RTCPeerConnection === 'function';
}

/** Whether the server offers WHEP for `eventId` (its OPTIONS answers 204). */
export async function whepOffered(eventId: string, signal?: AbortSignal): Promise<boolean> {
  try {
    const r = await fetch(`/whep/${encodeURIComponent(eventId)}`, { method: 'OPTIONS', ...(signal ? { signal } : {}) });
    return r.status === 204;
  } catch {
    return false;
  }
}

/** One WHEP session on a <video>. */
export class WhepPlayer {
  #pc: RTCPeerConnection | undefined;
  #session: string | undefined;

  constructor(
    private readonly video: HTMLVideoElement,
    /** Called once if the connection fails after it started playing. */
    private readonly onLost: () => void,
  ) {}

  /** True while a session is open. */
  get active(): boolean {
    return this.#pc !== undefined;
  }

  /** Opens a session and resolves once the first frame is shown; rejects with a WhepError (and cleans up). */
  async start(eventId: string, token: string): Promise<void> {
    this.stop();
    const pc = new RTCPeerConnection();
    this.#pc = pc;
    try {
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      const stream = new MediaStream();
      pc.addEventListener('track', (e) => stream.addTrack(e.track));
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, GATHER_MS);
        const done = () => {
          if (pc.iceGatheringState !== 'complete') return;
          clearTimeout(timer);
          resolve();
        };
        pc.addEventListener('icegatheringstatechange', done);
        done();
      });
      const url = new URL(`/whep/${encodeURIComponent(eventId)}`, window.location.href).href;
      const r = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
        body: pc.localDescription?.sdp ?? '',
      });
      if (r.status !== 201) {
        const body = (await r.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
        throw new WhepError(body?.error?.code ?? `http_${r.status}`, body?.error?.message ?? `WHEP answered ${r.status}`);
      }
      const location = r.headers.get('location');
      if (location) this.#session = new URL(location, url).href;
      await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
      if (this.#pc !== pc) throw new WhepError('stopped', 'stopped');
      this.video.srcObject = stream;
      await this.#firstFrame(pc);
      pc.addEventListener('connectionstatechange', () => {
        if (this.#pc === pc && pc.connectionState === 'failed') {
          this.stop();
          this.onLost();
        }
      });
    } catch (err) {
      if (this.#pc === pc) this.stop();
      throw err instanceof WhepError ? err : new WhepError('failed', err instanceof Error ? err.message : String(err));
    }
  }

  /** Resolves when the video shows its first frame; rejects if the connection fails or none comes in time. */
  #firstFrame(pc: RTCPeerConnection): Promise<void> {
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        this.video.removeEventListener('playing', onPlaying);
        pc.removeEventListener('connectionstatechange', onState);
      };
      const onPlaying = () => {
        cleanup();
        resolve();
      };
      const onState = () => {
        if (pc.connectionState !== 'failed' && pc.connectionState !== 'closed') return;
        cleanup();
        reject(new WhepError('failed', `the connection ${pc.connectionState}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new WhepError('no_media', 'no picture arrived in time'));
      }, FIRST_FRAME_MS);
      this.video.addEventListener('playing', onPlaying);
      pc.addEventListener('connectionstatechange', onState);
      void this.video.play().catch(() => undefined);
    });
  }

  /** Ends the session (DELETE to the server) and releases the video element. */
  stop(): void {
    const pc = this.#pc;
    this.#pc = undefined;
    if (!pc) return;
    pc.close();
    if (this.#session) void fetch(this.#session, { method: 'DELETE', keepalive: true }).catch(() => undefined);
    this.#session = undefined;
    if (this.video.srcObject) this.video.srcObject = null;
  }
}
