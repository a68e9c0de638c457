// A hand-written one-video-track H.264 SDP offer for WHIP/WHEP tests that need no browser: the endpoints' checks
// before ICE read only its text, and with `ice` it carries the credentials and fingerprint a real offer has, so the
// server builds a real peer connection for it (which never connects).

/** An H.264 offer: `sendonly` as a WHIP publisher sends it, `recvonly` as a WHEP viewer does. */
export function h264Offer(direction: 'sendonly' | 'recvonly', ice = true): string {
  return [
    'v=0',
    'o=- 1 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=group:BUNDLE 0',
    'm=video 9 UDP/TLS/RTP/SAVPF 102',
    'c=IN IP4 0.0.0.0',
    'a=mid:0',
    `a=${direction}`,
    ...(ice
      ? [
          'a=ice-ufrag:abcd',
          'a=ice-pwd:abcdefghijklmnopqrstuvwx',
          'a=fingerprint:sha-256 ' + Array(32).fill('AB').join(':'),
          'a=setup:actpass',
        ]
      : []),
    'a=rtcp-mux',
    'a=rtpmap:102 H264/90000',
    'a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
    '',
  ].join('\r\n');
}
