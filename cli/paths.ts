// Locates files that ship with the package (the built player), wherever the code runs from.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: the nearest folder above this file holding package.json. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the onair package root');
    dir = up;
  }
  return dir;
}

/** Where `vite build` puts the player. */
export function playerDir(): string {
  return join(packageRoot(), 'dist', 'player');
}
