// Runs every *.test.ts under the role folders (unit tests first, then test/e2e) with node:test through tsx.
//   tsx scripts/run-tests.ts [substring…]   only files whose path contains one of the substrings
import { readdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
const folders = ['config', 'lib', 'ingest', 'origin', 'edge', 'chat', 'control', 'cli', 'player', 'scripts', 'test/e2e'];
const filters = process.argv.slice(2);

const files = folders.flatMap((folder) => {
  let names: string[];
  try {
    names = readdirSync(join(root, folder), { recursive: true, encoding: 'utf8' });
  } catch {
    return [];
  }
  return names
    .filter((n) => n.endsWith('.test.ts') && !n.includes('node_modules'))
    .map((n) => relative(root, join(root, folder, n)))
    .sort();
}).filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));

if (files.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=300000', ...files],
  { cwd: root, stdio: 'inherit' },
);
child.on('close', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
