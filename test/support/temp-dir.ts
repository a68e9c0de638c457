// Test helper: a fresh directory under the OS temp dir, removed (with its contents) by the test when done.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A temp directory and the function that removes it. */
export interface TempDir {
  readonly path: string;
  /** Removes the directory and everything in it; safe to call twice. */
  remove(): void;
}

/** Creates `<tmpdir>/onair-<prefix>-XXXXXX`. */
export function makeTempDir(prefix: string): TempDir {
  const path = mkdtempSync(join(tmpdir(), `onair-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
