// CI smoke of the k6 load test: a live all-in-one server with a published stream, 30 s of simulated viewers and
// chat users (signing their tokens with the server's secret; without it they ask the API, tried by hand).
// Fails (non-zero exit) when k6's thresholds fail, so the script we ship is known to work.
//   tsx scripts/k6/smoke.ts [--vus 10] [--duration 30s]
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { publishLive, startOnair } from '../bench/edge-fixtures.ts';
import { ensureK6, runK6 } from './run.ts';

const { values } = parseArgs({ options: { vus: { type: 'string', default: '10' }, duration: { type: 'string', default: '30s' } } });

// Build (or find) k6 before starting anything, so a cold build does not eat into the stream's life.
await ensureK6();
const viewerTokenSecret = randomBytes(24).toString('hex');
const server = await startOnair({ ONAIR_VIEWER_TOKEN_SECRET: viewerTokenSecret });
let code: number;
try {
  // 640x360 keeps the ladder to its 360p rung: light enough for a CI machine.
  const live = await publishLive(server, server.base, { width: 640, height: 360, fps: 30, videoKbps: 800, rendition: '360p' });
  try {
    code = await runK6({
      baseUrl: server.base,
      eventId: live.id,
      vus: Number(values.vus),
      duration: values.duration,
      sessionSec: 15,
      viewerTokenSecret,
    });
  } finally {
    live.stop();
  }
} finally {
  await server.stop();
}
console.error(`k6 smoke: ${code === 0 ? 'passed' : `failed (k6 exit ${code})`}`);
process.exit(code);
