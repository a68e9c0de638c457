// The live thumbnails of one broadcast, made cheaply from the lowest video rung: every `intervalSec` of media, the
// newest complete segment (init + segment: a whole fMP4 starting on a keyframe) is piped into one short ffmpeg that
// decodes only that keyframe (`-skip_frame nokey`) and writes two JPEGs, the live thumbnail (320 px wide) and a
// seek-preview tile (160 px). Tiles are packed into sprite sheets (layout.ts) by another short ffmpeg (`tile`
// filter), only when a sheet is asked for or due for storage. One job at a time; a segment that arrives while one
// runs is skipped (the next one is taken). Live serving never waits for any of it.
import { spawn } from 'node:child_process';
import type { Logger } from '../../lib/logger.ts';
import {
  previewCues,
  renderPreviewVtt,
  scaledSize,
  sheetGrid,
  THUMBNAIL_WIDTH,
  TILE_WIDTH,
  TILES_PER_SHEET,
  tilesInSheet,
  type Size,
} from './layout.ts';

/** The packager side a thumbnailer reads (a RenditionPackager satisfies it). */
export interface ThumbnailSource {
  init(run: number): Buffer | undefined;
  on(
    event: 'segment',
    listener: (s: { msn: number; run: number; durationSec: number; programDateTimeMs: number; bytes(): Buffer }) => void,
  ): unknown;
}

/** What a thumbnailer reports (the recorder stores it). */
export interface ThumbnailHooks {
  /** A new live thumbnail, taken `mediaSec` into the broadcast. */
  thumbnail?(jpeg: Buffer, mediaSec: number): void;
  /** Sprite sheet `n` as it is now, holding tiles [n × TILES_PER_SHEET, … + count) of `tileMsns`. */
  sheet?(n: number, jpeg: Buffer, tileMsns: readonly number[]): void;
}

export interface ThumbnailerOptions {
  ffmpegPath: string;
  /** Media seconds between two thumbnails (and tiles). */
  intervalSec: number;
  logger: Logger;
  hooks?: ThumbnailHooks;
  /** Tiles between two sheet reports while a sheet fills (a crash loses at most these). Default 6. */
  checkpointTiles?: number;
  /** Counts the CPU seconds each ffmpeg job used. */
  cpu?: (seconds: number) => void;
}

const JOB_TIMEOUT_MS = 10_000;

/** The POSIX shell's `times` output: its own user/system times, then its children's (`0m0.040000s 0m0.030000s`). */
const TIMES = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/;

/**
 * Runs ffmpeg with `input` on stdin; resolves to what it wrote on fd 1 and on each of `extraOutputs` more fds, and the
 * CPU seconds (user + system) it used. It runs under `sh`, whose `times` builtin reports its waited child's CPU time
 * exactly (Node cannot read a child's rusage); killed with its process group after JOB_TIMEOUT_MS.
 */
export function runFfmpeg(
  ffmpegPath: string,
  args: string[],
  input: Buffer,
  extraOutputs = 0,
): Promise<{ outputs: Buffer[]; cpuSec: number }> {
  return new Promise((resolve, reject) => {
    const stdio = ['pipe', 'pipe', 'pipe', ...Array<'pipe'>(extraOutputs).fill('pipe')] as const;
    const script = '"$@"; s=$?; times >&2; exit $s';
    const child = spawn('sh', ['-c', script, 'sh', ffmpegPath, '-hide_banner', '-nostats', '-loglevel', 'error', ...args], {
      stdio: [...stdio],
      detached: true,
    });
    const outs: Buffer[][] = [];
    for (let i = 0; i <= extraOutputs; i++) {
      const chunks: Buffer[] = [];
      outs.push(chunks);
      (child.stdio[i === 0 ? 1 : i + 2] as NodeJS.ReadableStream).on('data', (c: Buffer) => chunks.push(c));
    }
    let err = '';
    child.stderr!.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-4000)));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, JOB_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const m = TIMES.exec(err);
      const cpuSec = m ? Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]) : 0;
      const said = (m ? err.slice(0, err.lastIndexOf('\n', m.index - 2) + 1) : err).trim().split('\n');
      if (code !== 0) return reject(new Error(`ffmpeg exited with ${code ?? signal}: ${said[said.length - 1] ?? ''}`));
      resolve({ outputs: outs.map((c) => Buffer.concat(c)), cpuSec });
    });
    child.stdin!.on('error', () => {}); // ffmpeg may stop reading once it has its frame
    child.stdin!.end(input);
  });
}

/** Takes the thumbnails of one broadcast's lowest video rung. */
export class Thumbnailer {
  readonly #opts: ThumbnailerOptions;
  readonly #log: Logger;
  #thumb: Size | undefined;
  #tile: Size | undefined;
  /** The rung's segments so far, in order: the live VTT's timeline. */
  readonly #segments: { msn: number; durationSec: number }[] = [];
  #mediaSec = 0;
  /** The segment each tile was taken from, in order. */
  readonly #tileMsns: number[] = [];
  /** The tiles of the sheet being filled (sheet index = #tileMsns.length / TILES_PER_SHEET, rounded down). */
  #openTiles: Buffer[] = [];
  /** Built sheets: index → bytes and the tile count they hold. */
  readonly #sheets = new Map<number, { count: number; jpeg: Promise<Buffer> }>();
  #latest: { jpeg: Buffer; atMs: number } | undefined;
  #lastTakenPdt: number | undefined;
  #job: Promise<void> | undefined;
  #stopped = false;
  #sinceReport = 0;

  constructor(opts: ThumbnailerOptions) {
    this.#opts = opts;
    this.#log = opts.logger.child({ component: 'thumbnails' });
  }

  /** Follows `p`, the lowest video rung, `size` being its picture size. */
  attach(p: ThumbnailSource, size: Size): void {
    this.#thumb = scaledSize(size, THUMBNAIL_WIDTH);
    this.#tile = scaledSize(size, TILE_WIDTH);
    p.on('segment', (s) => {
      if (this.#stopped || s.durationSec <= 0) return;
      this.#segments.push({ msn: s.msn, durationSec: s.durationSec });
      const mediaSec = this.#mediaSec;
      this.#mediaSec += s.durationSec;
      const due = this.#lastTakenPdt === undefined || s.programDateTimeMs - this.#lastTakenPdt >= this.#opts.intervalSec * 1000 - 250;
      if (!due || this.#job) return;
      const init = p.init(s.run);
      if (!init) return;
      this.#lastTakenPdt = s.programDateTimeMs;
      this.#job = this.#take(Buffer.concat([init, s.bytes()]), s.msn, mediaSec).finally(() => (this.#job = undefined));
    });
  }

  /** The newest live thumbnail (JPEG), if one was taken. */
  get thumbnail(): { jpeg: Buffer; atMs: number } | undefined {
    return this.#latest;
  }

  /** The tile size, once attached. */
  get tileSize(): Size | undefined {
    return this.#tile;
  }

  /** How many tiles there are. */
  get tileCount(): number {
    return this.#tileMsns.length;
  }

  /** The seek-preview WebVTT of the broadcast so far (cue times: seconds since its first segment). */
  vtt(): string {
    return renderPreviewVtt(this.#tile ? previewCues(this.#segments, this.#tileMsns, this.#tile) : []);
  }

  /** Sprite sheet `n` with every tile it holds now; undefined when it has none. */
  sheet(n: number): Promise<Buffer> | undefined {
    const count = tilesInSheet(n, this.#tileMsns.length);
    if (count === 0) return undefined;
    const built = this.#sheets.get(n);
    if (built && built.count === count) return built.jpeg;
    // Finished sheets were built when they filled; only the one being filled changes.
    if (n !== (this.#tileMsns.length - this.#openTiles.length) / TILES_PER_SHEET) return built?.jpeg;
    const tiles = this.#openTiles.slice(0, count);
    const jpeg = this.#build(tiles);
    this.#sheets.set(n, { count, jpeg });
    jpeg.catch(() => this.#sheets.delete(n));
    return jpeg;
  }

  /** Stops taking thumbnails; waits for the running job, then reports the last sheet (for the recording). */
  async finish(): Promise<void> {
    this.#stopped = true;
    await this.#job;
    if (this.#sinceReport > 0) await this.#report();
  }

  async #take(input: Buffer, msn: number, mediaSec: number): Promise<void> {
    const thumb = this.#thumb!;
    const tile = this.#tile!;
    try {
      const { outputs, cpuSec } = await runFfmpeg(
        this.#opts.ffmpegPath,
        [
          '-skip_frame',
          'nokey',
          '-i',
          'pipe:0',
          '-filter_complex',
          `[0:v]split=2[a][b];[a]scale=${thumb.width}:${thumb.height}[t];[b]scale=${tile.width}:${tile.height}[s]`,
          ...['-map', '[t]', '-frames:v', '1', '-q:v', '5', '-f', 'mjpeg', 'pipe:1'],
          ...['-map', '[s]', '-frames:v', '1', '-q:v', '6', '-f', 'mjpeg', 'pipe:3'],
        ],
        input,
        1,
      );
      this.#opts.cpu?.(cpuSec);
      const [big, small] = outputs;
      if (!big?.length || !small?.length) throw new Error('ffmpeg wrote no picture');
      this.#latest = { jpeg: big, atMs: Date.now() };
      this.#opts.hooks?.thumbnail?.(big, mediaSec);
      this.#tileMsns.push(msn);
      this.#openTiles.push(small);
      this.#sinceReport++;
      const full = this.#openTiles.length === TILES_PER_SHEET;
      if (full || this.#sinceReport >= (this.#opts.checkpointTiles ?? 6)) await this.#report();
      if (full) this.#openTiles = [];
    } catch (err) {
      this.#log.warn({ msn, err: (err as Error).message }, 'thumbnail not taken');
    }
  }

  /** Builds the sheet being filled (or the one just filled) and reports it. */
  async #report(): Promise<void> {
    if (this.#openTiles.length === 0) return;
    const n = Math.floor((this.#tileMsns.length - 1) / TILES_PER_SHEET);
    this.#sinceReport = 0;
    try {
      const jpeg = await this.sheet(n);
      if (jpeg) this.#opts.hooks?.sheet?.(n, jpeg, this.#tileMsns.slice());
    } catch (err) {
      this.#log.warn({ sheet: n, err: (err as Error).message }, 'sprite sheet not built');
    }
  }

  async #build(tiles: Buffer[]): Promise<Buffer> {
    const { columns, rows } = sheetGrid(tiles.length);
    const { outputs, cpuSec } = await runFfmpeg(
      this.#opts.ffmpegPath,
      [
        '-f',
        'jpeg_pipe',
        '-i',
        'pipe:0',
        '-vf',
        `tile=${columns}x${rows}:color=black`,
        '-frames:v',
        '1',
        '-q:v',
        '6',
        '-f',
        'mjpeg',
        'pipe:1',
      ],
      Buffer.concat(tiles),
    );
    this.#opts.cpu?.(cpuSec);
    const jpeg = outputs[0];
    if (!jpeg?.length) throw new Error('ffmpeg wrote no sprite sheet');
    return jpeg;
  }
}
