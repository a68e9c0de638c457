// bench:whep — CPU per WHEP viewer. One all-in-one onair with a live 360p30 RTMP publish; werift peers in this
// process open WHEP sessions in steps (default 1, 5, 10, 20) and count what they receive. Per step: the onair
// process's CPU (its share of one core) and the event's WHEP relay ffmpeg's, over --step-sec seconds, and per viewer
// the video frames (distinct RTP timestamps) received per second, the lowest viewer reported (the source runs at
// 30 fps: fewer means frames dropped somewhere). The cost per viewer is the slope of onair's CPU over viewers.
// Prints one JSON line last.
//   npm run bench:whep [-- --steps 1,5,10,20 --step-sec 10]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { MediaStreamTrack, RTCPeerConnection } from 'werift';
import { h264OpusPeer } from '../../ingest/webrtc-http.ts';
import { publishLive, startOnair, waitFor } from './edge-fixtures.ts';

/** One WHEP viewer: its peer connection and what it received. */
interface Peer {
  pc: RTCPeerConnection;
  session: string;
  frames: Set<number>;
  audioPackets: number;
}

function cpuSec(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** The pid of `parent`'s child process whose command line contains `needle`. */
function childWith(parent: number, needle: string): number | undefined {
  const children = readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return children.find((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle);
    } catch {
      return false;
    }
  });
}

async function openPeer(base: string, eventId: string, token: string): Promise<Peer> {
  const pc = h264OpusPeer({ whipIceAddresses: ['127.0.0.1'] }, false);
  const peer: Peer = { pc, session: '', frames: new Set(), audioPackets: 0 };
  const take = (track: MediaStreamTrack) =>
    track.onReceiveRtp.subscribe((rtp) => {
      if (track.kind === 'video') peer.frames.add(rtp.header.timestamp);
      else peer.audioPackets++;
    });
  pc.addTransceiver('video', { direction: 'recvonly' }).onTrack.subscribe(take);
  pc.addTransceiver('audio', { direction: 'recvonly' }).onTrack.subscribe(take);
  await pc.setLocalDescription(await pc.createOffer());
  await waitFor('ICE gathering', () => pc.iceGatheringState === 'complete' || undefined, 5_000, 20);
  const r = await fetch(`${base}/whep/${eventId}`, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
    body: pc.localDescription!.sdp,
  });
  if (r.status !== 201) throw new Error(`WHEP POST ${r.status}: ${await r.text()}`);
  peer.session = new URL(r.headers.get('location')!, base).href;
  await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
  return peer;
}

async function main(): Promise<void> {
  const { values: flags } = parseArgs({
    options: { steps: { type: 'string', default: '1,5,10,20' }, 'step-sec': { type: 'string', default: '10' } },
  });
  const steps = flags.steps.split(',').map(Number);
  const stepSec = Number(flags['step-sec']);
  const server = await startOnair({ ONAIR_WHIP_ICE_ADDRESSES: '127.0.0.1', ONAIR_WHEP_MAX_VIEWERS: '1000' });
  const peers: Peer[] = [];
  let live: Awaited<ReturnType<typeof publishLive>> | undefined;
  try {
    live = await publishLive(server, server.base, { width: 640, height: 360, fps: 30, videoKbps: 800, rendition: '360p' });
    const v = await fetch(`${server.base}/api/v1/viewers`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ displayName: 'bench' }),
    });
    const { token } = (await v.json()) as { token: string };
    const pid = server.child.pid!;
    const measure = async () => {
      const relay = childWith(pid, 'libopus');
      const [c0, r0, t0] = [cpuSec(pid), relay ? cpuSec(relay) : 0, Date.now()];
      const before = peers.map((p) => p.frames.size);
      await new Promise((r) => setTimeout(r, stepSec * 1000));
      const sec = (Date.now() - t0) / 1000;
      const fps = peers.map((p, i) => (p.frames.size - before[i]!) / sec);
      return {
        onairCpu: +((cpuSec(pid) - c0) / sec).toFixed(3),
        relayCpu: relay ? +((cpuSec(relay) - r0) / sec).toFixed(3) : 0,
        minFps: fps.length ? +Math.min(...fps).toFixed(1) : null,
        meanFps: fps.length ? +(fps.reduce((a, b) => a + b, 0) / fps.length).toFixed(1) : null,
      };
    };
    const rows: { viewers: number; onairCpu: number; relayCpu: number; minFps: number | null; meanFps: number | null }[] = [];
    rows.push({ viewers: 0, ...(await measure()) });
    console.error(JSON.stringify(rows.at(-1)));
    for (const n of steps) {
      while (peers.length < n) peers.push(await openPeer(server.base, live.id, token));
      await waitFor('every viewer receiving video', () => peers.every((p) => p.frames.size > 0) || undefined, 20_000, 100).catch(
        (err: Error) => {
          throw new Error(`${err.message} (${peers.map((p) => `${p.pc.connectionState}/${p.frames.size}/${p.audioPackets}`).join(' ')})`);
        },
      );
      rows.push({ viewers: n, ...(await measure()) });
      console.error(JSON.stringify(rows.at(-1)));
    }
    const last = rows.at(-1)!;
    const perViewer = (last.onairCpu - rows[1]!.onairCpu) / Math.max(1, last.viewers - rows[1]!.viewers);
    console.log(
      JSON.stringify({
        bench: 'whep',
        source: '640x360 30 fps, 800 kbit/s H.264 + AAC over RTMP',
        steps: rows,
        onairCpuPerViewer: +perViewer.toFixed(4),
        viewersPerCore: perViewer > 0 ? Math.floor(1 / perViewer) : null,
        relayCpu: last.relayCpu,
      }),
    );
  } finally {
    for (const p of peers) {
      await fetch(p.session, { method: 'DELETE' }).catch(() => {});
      await p.pc.close().catch(() => {});
    }
    live?.stop();
    await server.stop();
  }
}

// werift's closed peer connections keep timers and sockets alive: exit once the figures are out and onair stopped.
await main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
