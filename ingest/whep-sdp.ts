// WHEP's offer rules, as a pure function: a viewer's offer is WHIP's (ingest/whip-sdp.ts: one H.264 video, at
// most one Opus audio, ICE credentials, a DTLS fingerprint) turned around: its media must be able to receive.
import { offerProblem } from './whip-sdp.ts';

/** Why a WHEP offer cannot be used, or undefined. */
export function whepOfferProblem(sdp: string): string | undefined {
  const problem = offerProblem(sdp);
  if (problem) return problem.replace('(OBS: x264 or NVENC; browsers: H.264)', '(browsers: add a recvonly video transceiver)');
  // Each m-line's direction (a session-level one applies to all that state none); sendrecv is taken as receive.
  const sections = sdp.split(/\r?\n(?=m=)/);
  const sessionDir = /^a=(sendonly|inactive)\s*$/m.exec(sections[0] ?? '')?.[1];
  for (const media of sections.slice(1)) {
    const dir = /^a=(sendonly|recvonly|sendrecv|inactive)\s*$/m.exec(media)?.[1] ?? sessionDir;
    if (dir === 'sendonly' || dir === 'inactive') {
      return `the offer's ${media.slice(2, 7)} is ${dir}: a WHEP offer receives (recvonly)`;
    }
  }
  return undefined;
}
