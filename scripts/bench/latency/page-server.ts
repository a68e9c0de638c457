// Tiny local HTTP server for the latency bench page: the HTML, its TypeScript transpiled on the
// fly (page.ts, the shared strip decoder ../stamp.ts, the player's catch-up and what it imports), and hls.js from
// node_modules.
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import ts from 'typescript';

const benchDir = join(import.meta.dirname, '..');
const root = join(benchDir, '..', '..');

/** URL path → [file, kind]; nothing else is served. */
const files: Record<string, [string, 'html' | 'ts' | 'js']> = {
  '/latency/page.html': [join(benchDir, 'latency', 'page.html'), 'html'],
  '/latency/page.ts': [join(benchDir, 'latency', 'page.ts'), 'ts'],
  '/latency/whip.html': [join(benchDir, 'latency', 'whip.html'), 'html'],
  '/latency/whip-page.ts': [join(benchDir, 'latency', 'whip-page.ts'), 'ts'],
  '/latency/whep.html': [join(benchDir, 'latency', 'whep.html'), 'html'],
  '/latency/whep-page.ts': [join(benchDir, 'latency', 'whep-page.ts'), 'ts'],
  '/latency/strip-reader.ts': [join(benchDir, 'latency', 'strip-reader.ts'), 'ts'],
  '/latency/watch-reader.ts': [join(benchDir, 'latency', 'watch-reader.ts'), 'ts'],
  '/stamp.ts': [join(benchDir, 'stamp.ts'), 'ts'],
  '/player/src/latency-control.ts': [join(root, 'player', 'src', 'latency-control.ts'), 'ts'],
  '/lib/hls-path.ts': [join(root, 'lib', 'hls-path.ts'), 'ts'],
  '/vendor/hls.mjs': [join(root, 'node_modules', 'hls.js', 'dist', 'hls.mjs'), 'js'],
};

/**
 * The bench page server on 127.0.0.1 (a free port); `pageUrl` is the player page, `whipPageUrl` the WHIP publisher,
 * `whepPageUrl` the bare WHEP player (a peer's WHEP endpoint), `watchReaderUrl` the strip reader module imported into onair's watch page (another origin: served with CORS).
 */
export interface LatencyPageServer {
  pageUrl: string;
  whipPageUrl: string;
  whepPageUrl: string;
  watchReaderUrl: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Builds the page server; call start() before using pageUrl. */
export function createLatencyPageServer(): LatencyPageServer {
  const cache = new Map<string, string>();
  let server: Server | undefined;
  const self: LatencyPageServer = {
    pageUrl: '',
    whipPageUrl: '',
    whepPageUrl: '',
    watchReaderUrl: '',
    async start() {
      const s = createServer((req, res) => {
        const path = new URL(req.url ?? '/', 'http://x').pathname;
        const entry = files[path];
        if (!entry) {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
          return;
        }
        const [file, kind] = entry;
        void (async () => {
          let body = cache.get(path);
          if (body === undefined) {
            const src = await readFile(file, 'utf8');
            body =
              kind === 'ts'
                ? ts.transpileModule(src, {
                    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, verbatimModuleSyntax: true },
                  }).outputText
                : src;
            cache.set(path, body);
          }
          res
            .writeHead(200, {
              'content-type': kind === 'html' ? 'text/html; charset=utf-8' : 'text/javascript; charset=utf-8',
              'cache-control': 'no-store',
              'access-control-allow-origin': '*',
            })
            .end(body);
        })().catch((err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
        });
      });
      server = s;
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve());
      });
      const { port } = s.address() as { port: number };
      self.pageUrl = `http://127.0.0.1:${port}/latency/page.html`;
      self.whipPageUrl = `http://127.0.0.1:${port}/latency/whip.html`;
      self.whepPageUrl = `http://127.0.0.1:${port}/latency/whep.html`;
      self.watchReaderUrl = `http://127.0.0.1:${port}/latency/watch-reader.ts`;
    },
    async stop() {
      const s = server;
      server = undefined;
      if (!s) return;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
  };
  return self;
}
