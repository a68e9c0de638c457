// The MediaMTX peer of the latency bench: a MediaMTX binary the user supplies (`--mediamtx PATH` or MEDIAMTX_BIN;
// no MediaMTX code lives in this repository), run from a generated config in a temp dir: RTMP in, LL-HLS out
// (its defaults: 1 s segments, 200 ms parts), WHEP when asked for (WebRTC on loopback), every other server off,
// loopback ports only.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where the MediaMTX peer listens once started. */
export interface MediaMtx {
  /** Publish here: rtmp://127.0.0.1:<port>/<name>. */
  rtmpBase: string;
  /** Media playlist of stream `name` (MediaMTX's multivariant playlist is index.m3u8 too). */
  hlsUrl(name: string): string;
  /** WHEP endpoint of stream `name` (only with `webrtcPort`). */
  whepUrl(name: string): string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Options of the MediaMTX peer. */
export interface MediaMtxOptions {
  binary: string;
  rtmpPort: number;
  hlsPort: number;
  /** WebRTC (WHEP) HTTP port and ICE UDP port; WebRTC stays off without them. */
  webrtcPort?: number;
  webrtcUdpPort?: number;
  /** LL-HLS segment and part durations (MediaMTX's defaults: 1s and 200ms). */
  segmentDuration?: string;
  partDuration?: string;
}

/**
 * The binary to use: `--mediamtx PATH`, else MEDIAMTX_BIN; undefined (skip the peer) when neither is given.
 * A path given but not an executable file is an error.
 */
export function mediaMtxBinary(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const path = flag ?? env.MEDIAMTX_BIN;
  if (!path) return undefined;
  if (!existsSync(path) || !statSync(path).isFile()) throw new Error(`MediaMTX binary not found at ${path}`);
  return path;
}

/**
 * mediamtx.yml: RTMP and LL-HLS on loopback; WebRTC (WHEP) on loopback when its ports are given (the only ICE
 * candidate it sends is 127.0.0.1); RTSP, SRT, API, metrics, pprof and playback off.
 */
export function mediaMtxConf(o: MediaMtxOptions): string {
  const webrtc =
    o.webrtcPort !== undefined && o.webrtcUdpPort !== undefined
      ? `webrtc: true
webrtcAddress: 127.0.0.1:${o.webrtcPort}
webrtcAllowOrigins: ['*']
webrtcLocalUDPAddress: 127.0.0.1:${o.webrtcUdpPort}
webrtcLocalTCPAddress: ''
webrtcIPsFromInterfaces: false
webrtcAdditionalHosts: [127.0.0.1]
webrtcICEServers2: []`
      : 'webrtc: false';
  return `logLevel: warn
logDestinations: [stdout]
api: false
metrics: false
pprof: false
playback: false
rtsp: false
${webrtc}
srt: false
rtmp: true
rtmpAddress: 127.0.0.1:${o.rtmpPort}
hls: true
hlsAddress: 127.0.0.1:${o.hlsPort}
hlsAllowOrigins: ['*']
hlsVariant: lowLatency
hlsAlwaysRemux: true
hlsSegmentDuration: ${o.segmentDuration ?? '1s'}
hlsPartDuration: ${o.partDuration ?? '200ms'}
paths:
  all_others:
`;
}

/** Builds the peer; start() runs `<binary> <tmp>/mediamtx.yml`, stop() ends it by its pid and removes the dir. */
export function createMediaMtx(o: MediaMtxOptions): MediaMtx {
  let dir: string | undefined;
  let child: ChildProcess | undefined;
  let exited: Promise<void> | undefined;
  let log = '';
  return {
    rtmpBase: `rtmp://127.0.0.1:${o.rtmpPort}`,
    hlsUrl: (name) => `http://127.0.0.1:${o.hlsPort}/${name}/index.m3u8`,
    whepUrl: (name) => `http://127.0.0.1:${o.webrtcPort ?? 0}/${name}/whep`,
    async start() {
      dir = mkdtempSync(join(tmpdir(), 'onair-mediamtx-'));
      const conf = join(dir, 'mediamtx.yml');
      writeFileSync(conf, mediaMtxConf(o));
      const c = spawn(o.binary, [conf], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      child = c;
      const keep = (d: Buffer) => (log = (log + d.toString()).slice(-4000));
      c.stdout!.on('data', keep);
      c.stderr!.on('data', keep);
      exited = new Promise((resolve) => c.on('close', () => resolve()));
      // Ready when its HTTP port answers (a 404 for a stream not yet published is fine).
      const deadline = Date.now() + 15_000;
      for (;;) {
        if (c.exitCode !== null) throw new Error(`mediamtx exited with ${c.exitCode}: ${log}`);
        const ok = await fetch(`http://127.0.0.1:${o.hlsPort}/`).then(
          () => true,
          () => false,
        );
        if (ok) return;
        if (Date.now() > deadline) throw new Error(`mediamtx did not answer on ${o.hlsPort}: ${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      const c = child;
      child = undefined;
      if (c && c.exitCode === null && c.signalCode === null) {
        c.kill('SIGTERM');
        const t = setTimeout(() => c.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
      dir = undefined;
    },
  };
}
