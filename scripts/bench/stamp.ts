// Wall-clock strip burnt into test video: the publisher's ms-since-epoch (mod 2^32) as a row of
// black/white blocks, and the decoder that reads it back. Pure functions only: the bench page
// loads this file in the browser too.
//
// Layout: the bottom STRIP_HEIGHT/FRAME_HEIGHT of the frame, full width, split into STRIP_CELLS
// equal cells: 32 data bits (most significant first), then 8 check bits holding
// 255 - (stamp mod 251). A frame whose check does not match is dropped (an all-black or
// all-white strip never matches). At 1280x720 each cell is 32x64 px; at 640x360, 16x32 px.

/** Cells in the strip: 32 stamp bits + 8 check bits. */
export const STRIP_CELLS = 40;
/** Data bits in a stamp. */
export const STAMP_BITS = 32;
/** The stamp wraps at 2^32 ms (~49.7 days). */
export const STAMP_MODULUS = 2 ** 32;
/** Reference frame height the strip is designed for (it scales with the picture). */
export const FRAME_HEIGHT = 720;
/** Strip height at FRAME_HEIGHT; the test pattern above it is FRAME_HEIGHT - STRIP_HEIGHT tall. */
export const STRIP_HEIGHT = 64;

/** The check value carried in the last 8 cells. */
export function stampCheck(stamp: number): number {
  return 255 - (stamp % 251);
}

/** The 40 cell values (0 or 1) for a stamp: what the publisher draws. */
export function encodeStamp(stampMs: number): number[] {
  const v = ((Math.round(stampMs) % STAMP_MODULUS) + STAMP_MODULUS) % STAMP_MODULUS;
  const check = stampCheck(v);
  const cells: number[] = [];
  for (let i = 0; i < STAMP_BITS; i++) cells.push(Math.floor(v / 2 ** (STAMP_BITS - 1 - i)) % 2);
  for (let i = 0; i < STRIP_CELLS - STAMP_BITS; i++) cells.push(Math.floor(check / 2 ** (STRIP_CELLS - STAMP_BITS - 1 - i)) % 2);
  return cells;
}

/**
 * Reads a stamp from the 40 cells' mean luminances (0–255, sampled at each cell's centre);
 * undefined when the check does not match (a mis-read or torn frame).
 */
export function decodeStamp(cellLuma: ArrayLike<number>, threshold = 128): number | undefined {
  if (cellLuma.length !== STRIP_CELLS) return undefined;
  let v = 0;
  for (let i = 0; i < STAMP_BITS; i++) v = v * 2 + (cellLuma[i]! >= threshold ? 1 : 0);
  let check = 0;
  for (let i = STAMP_BITS; i < STRIP_CELLS; i++) check = check * 2 + (cellLuma[i]! >= threshold ? 1 : 0);
  return check === stampCheck(v) ? v : undefined;
}

/**
 * Mean luminance of the centre of each cell of a strip image `width` x `height` px (the strip
 * alone, cropped from the frame), given a per-pixel luminance reader (0–255). The centre half of
 * each cell is averaged, so compression ringing at cell borders does not matter.
 */
export function stripCellLuma(width: number, height: number, lumaAt: (x: number, y: number) => number): number[] {
  const cellW = width / STRIP_CELLS;
  const y0 = Math.floor(height / 4);
  const y1 = Math.max(y0 + 1, Math.ceil((height * 3) / 4));
  const out: number[] = [];
  for (let c = 0; c < STRIP_CELLS; c++) {
    const x0 = Math.floor(c * cellW + cellW / 4);
    const x1 = Math.max(x0 + 1, Math.ceil(c * cellW + (cellW * 3) / 4));
    let sum = 0;
    let n = 0;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        sum += lumaAt(x, y);
        n++;
      }
    }
    out.push(sum / n);
  }
  return out;
}

/** Top row and height of the strip in a frame of `frameHeight` px (the strip scales with the picture). */
export function stripRows(frameHeight: number): { top: number; height: number } {
  const height = (frameHeight * STRIP_HEIGHT) / FRAME_HEIGHT;
  return { top: frameHeight - height, height };
}

/** Milliseconds from `stamp` to `nowMs` (the local wall clock), modulo 2^32, in (-2^31, 2^31]. */
export function stampAge(nowMs: number, stamp: number): number {
  let d = (Math.floor(nowMs) - stamp) % STAMP_MODULUS;
  if (d < 0) d += STAMP_MODULUS;
  return d > STAMP_MODULUS / 2 ? d - STAMP_MODULUS : d;
}

/**
 * An ffmpeg lavfi graph: a WxH test pattern whose bottom strip carries the wall clock of the
 * moment each frame is generated (setpts RTCTIME, so no start-time guess is involved). The
 * strip is computed at one pixel per cell by geq and scaled up without interpolation; the
 * frames are renumbered N/fps before stacking so both branches share timestamps.
 */
export function stampedSourceGraph(width: number, height: number, fps: number): string {
  const stripH = Math.max(2, Math.round(stripRows(height).height / 2) * 2);
  const bits = STAMP_BITS;
  const checkBits = STRIP_CELLS - STAMP_BITS;
  // ld(0): stamp in ms mod 2^32 (T is the wall clock in seconds after setpts, exact to the ms).
  const lum =
    `st(0,mod(round(T*1000),${STAMP_MODULUS}));` +
    `255*if(lt(X,${bits}),mod(floor(ld(0)/pow(2,${bits - 1}-X)),2),` +
    `mod(floor((255-mod(ld(0),251))/pow(2,${bits + checkBits - 1}-X)),2))`;
  return [
    `testsrc2=size=${width}x${height - stripH}:rate=${fps}[pattern]`,
    `color=c=black:size=${STRIP_CELLS}x2:rate=${fps},format=gray,settb=1/1000,setpts=RTCTIME/1000,` +
      `geq=lum='${lum}',scale=${width}:${stripH}:flags=neighbor,format=yuv420p,settb=1/${fps},setpts=N[strip]`,
    `[pattern]settb=1/${fps},setpts=N[top]`,
    `[top][strip]vstack`,
  ].join(';');
}
