// A WHEP viewer inside a Chromium page, for the e2e tests: a recvonly RTCPeerConnection playing into a <video>.
import type { Page } from 'playwright-core';

/**
 * Plays a WHEP URL in the page (recvonly video + audio) into a <video>; resolves to the session URL, or rejects with
 * `WHEP POST: <status> <Retry-After> <body>`. Leaves `window.whepPc` and `window.whepVideo` for the stats scripts.
 * A string, not a function: tsx would wrap inner functions in a helper the page lacks.
 */
const PLAY_SCRIPT = `async ({ url, token }) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  document.body.append(video);
  const stream = new MediaStream();
  pc.addEventListener('track', (e) => { stream.addTrack(e.track); video.srcObject = stream; });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    setTimeout(resolve, 3000);
    if (pc.iceGatheringState === 'complete') resolve();
  });
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp', authorization: 'Bearer ' + token }, body: pc.localDescription.sdp });
  if (r.status !== 201) {
    pc.close();
    throw new Error('WHEP POST: ' + r.status + ' ' + r.headers.get('retry-after') + ' ' + (await r.text()));
  }
  await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
  window.whepPc = pc;
  window.whepVideo = video;
  return new URL(r.headers.get('location'), url).href;
}`;

/** Opens a WHEP session from `page` (already on a page of the server's origin); resolves to the session URL. */
export function playWhep(page: Page, url: string, token: string): Promise<string> {
  return page.evaluate(`(${PLAY_SCRIPT})(${JSON.stringify({ url, token })})`) as Promise<string>;
}
