// Test fixture: a short fragmented MP4 made by ffmpeg exactly the way the origin's ladder writes it.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** 7 s of 640x360@30 H.264 + stereo AAC, 2 s keyframes, 0.5 s fragments, written to `dir`. */
export async function makeFmp4Fixture(dir: string): Promise<Buffer> {
  const out = join(dir, 'out.mp4');
  await promisify(execFile)('ffmpeg', [
    '-nostdin', '-hide_banner', '-loglevel', 'error',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', '7', '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency',
    '-g', '60', '-keyint_min', '60', '-sc_threshold', '0', '-force_key_frames', 'expr:gte(t,n_forced*2)',
    '-c:a', 'aac', '-b:a', '128k', '-ac', '2',
    '-f', 'mp4', '-movflags', '+frag_keyframe+empty_moov+default_base_moof', '-frag_duration', '500000', out,
  ], { timeout: 60_000 });
  return readFile(out);
}
