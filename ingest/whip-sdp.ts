// WHIP's SDP rules, as pure functions: which offers are taken, which codecs are kept from them, and the SDP
// and arguments the forwarding ffmpeg gets.

/** Bitrates Chromium is told to start at and not exceed (x-google-* in the answer); without them it starts near 300 kbit/s. */
const START_KBPS = 2_500;
const MAX_KBPS = 6_000;

/** The payload types kept from a negotiated offer and the loopback ports their RTP is forwarded to (RTCP on port + 1). */
export interface Forwarding {
  video: { pt: number; port: number };
  audio?: { pt: number; channels: number; port: number };
}

/** Reasons an offer cannot be used, checked before werift sees it (werift's own errors are less helpful). */
export function offerProblem(sdp: string): string | undefined {
  if (!sdp.trim()) return 'the request body is empty: send the SDP offer';
  if (!sdp.startsWith('v=0')) return 'not an SDP offer (must start with v=0)';
  const media = sdp.split(/\r?\n/).filter((l) => l.startsWith('m='));
  const video = media.filter((l) => l.startsWith('m=video'));
  const audio = media.filter((l) => l.startsWith('m=audio'));
  if (video.length !== 1) return `the offer needs exactly one video track (found ${video.length})`;
  if (audio.length > 1) return `the offer has ${audio.length} audio tracks; at most one is taken`;
  if (media.length !== video.length + audio.length) return 'only audio and video m-lines are accepted';
  if (!/^a=rtpmap:\d+ H264\/90000/im.test(sdp)) return 'the video must offer H.264 (OBS: x264 or NVENC; browsers: H.264)';
  if (audio.length === 1 && !/^a=rtpmap:\d+ opus\/48000/im.test(sdp)) return 'the audio must offer Opus';
  // Without ICE credentials and a DTLS fingerprint (RFC 8839 §5.4, RFC 8842 §5) no connection can ever be made: a
  // session accepted now would only hold the event until its media timeout.
  if (!/^a=ice-ufrag:\S+/m.test(sdp) || !/^a=ice-pwd:\S+/m.test(sdp)) return 'the offer lacks ICE credentials (a=ice-ufrag, a=ice-pwd)';
  if (!/^a=fingerprint:\S+ \S+/m.test(sdp)) return 'the offer lacks a DTLS fingerprint (a=fingerprint)';
  return undefined;
}

/** The fields of an offered codec the choice looks at (werift's RTCRtpCodecParameters has them). */
export interface OfferedCodec {
  mimeType: string;
  payloadType: number;
  parameters?: string;
  channels?: number;
}

/**
 * The one codec kept for an offered track: H.264 with packetization-mode=1 for video, Opus for audio; a string
 * says why none fits; undefined for another kind of track.
 */
export function chooseCodec<C extends OfferedCodec>(kind: string, codecs: C[]): C | string | undefined {
  if (kind === 'video') {
    const h264 = codecs.find((c) => c.mimeType.toLowerCase() === 'video/h264' && /packetization-mode=1/.test(c.parameters ?? ''));
    return h264 ?? 'the video must offer H.264 with packetization-mode=1';
  }
  if (kind === 'audio') return codecs.find((c) => c.mimeType.toLowerCase() === 'audio/opus') ?? 'the audio must offer Opus';
  return undefined;
}

/** The answer's fmtp for the chosen H.264: the offer's, plus the start and maximum bitrates for Chromium. */
export function answerVideoParameters(offered: string | undefined): string {
  return `${offered};x-google-start-bitrate=${START_KBPS};x-google-max-bitrate=${MAX_KBPS}`;
}

/** The SDP ffmpeg reads (on stdin) to receive the forwarded RTP on loopback. */
export function ffmpegSdp(f: Forwarding): string {
  const lines = ['v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=onair WHIP', 'c=IN IP4 127.0.0.1', 't=0 0'];
  lines.push(
    `m=video ${f.video.port} RTP/AVP ${f.video.pt}`,
    `a=rtpmap:${f.video.pt} H264/90000`,
    `a=fmtp:${f.video.pt} packetization-mode=1`,
  );
  if (f.audio) lines.push(`m=audio ${f.audio.port} RTP/AVP ${f.audio.pt}`, `a=rtpmap:${f.audio.pt} opus/48000/${f.audio.channels}`);
  return lines.join('\n') + '\n';
}

/** ffmpeg arguments: RTP described by the SDP on stdin → FLV (H.264 copied, Opus → AAC) on stdout. */
export function ffmpegArgs(hasAudio: boolean, audioKbps: number): string[] {
  return [
    '-hide_banner',
    '-loglevel',
    'warning',
    '-nostdin',
    '-protocol_whitelist',
    'pipe,udp,rtp',
    // No frame-rate probing: it held the first ~0.7 s back and let it out in one burst, so the origin anchored
    // the stream's program date-time that much late.
    '-fpsprobesize',
    '0',
    '-f',
    'sdp',
    '-i',
    'pipe:0',
    '-map',
    '0:v:0',
    '-c:v',
    'copy',
    ...(hasAudio ? ['-map', '0:a:0', '-c:a', 'aac', '-b:a', `${audioKbps}k`, '-ar', '48000', '-ac', '2'] : []),
    '-f',
    'flv',
    '-flvflags',
    'no_duration_filesize',
    'pipe:1',
  ];
}
