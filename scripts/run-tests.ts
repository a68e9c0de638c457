// Runs the *.test.ts files with node:test through tsx, in two suites:
//   unit  every *.test.ts under the role folders, except the ones below: no child processes, no browser, fast.
//   e2e   test/e2e/**, and any test file named *.<needs>.test.ts, where <needs> says what it starts:
//         ffmpeg (ffmpeg/ffprobe), chromium (a browser), redis (redis-server), postgres (a PostgreSQL server),
//         seaweedfs (SeaweedFS `weed`, an S3 server; the test skips when it is not installed).
// A test that spawns one of these gets that suffix (e.g. origin/hls-server.ffmpeg.test.ts); shared helpers live
// in test/support/.
//   tsx scripts/run-tests.ts [--unit|--e2e] [--list] [substring…]   both suites by default (unit first); substrings
//   keep only files whose path contains one of them; --list prints the files instead of running them
import { readdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
const folders = [
  'config',
  'lib',
  'ingest',
  'origin',
  'edge',
  'control',
  'chat',
  'cli',
  'player',
  'scripts',
  'deploy',
  'test/e2e',
  'test/faults',
  'test/hostile',
];
/** Test files that start an external process or a browser. */
const NEEDS_PROCESS = /\.(ffmpeg|chromium|redis|postgres|seaweedfs)\.test\.ts$/;

/** True for a test file of the e2e suite (path relative to the repo root, with forward slashes). */
function isE2e(file: string): boolean {
  return file.startsWith('test/e2e/') || NEEDS_PROCESS.test(file);
}

function testFiles(): string[] {
  return folders.flatMap((folder) => {
    let names: string[];
    try {
      names = readdirSync(join(root, folder), { recursive: true, encoding: 'utf8' });
    } catch {
      return [];
    }
    return names
      .filter((n) => n.endsWith('.test.ts') && !n.includes('node_modules'))
      .map((n) =>
        relative(root, join(root, folder, n))
          .split('\\')
          .join('/'),
      )
      .sort();
  });
}

const args = process.argv.slice(2);
const suite = args.includes('--unit') ? 'unit' : args.includes('--e2e') ? 'e2e' : 'all';
const filters = args.filter((a) => !a.startsWith('--'));
const all = testFiles();
const unit = all.filter((f) => !isE2e(f));
const e2e = all.filter(isE2e);
const files = (suite === 'unit' ? unit : suite === 'e2e' ? e2e : [...unit, ...e2e]).filter(
  (f) => filters.length === 0 || filters.some((s) => f.includes(s)),
);
if (files.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}
if (args.includes('--list')) {
  console.log(files.join('\n'));
  process.exit(0);
}
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=300000', ...files], {
  cwd: root,
  stdio: 'inherit',
});
child.on('close', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
