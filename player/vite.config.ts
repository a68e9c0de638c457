// Vite build of the browser apps: player/ → dist/player/ (index.html, watch.html, console.html, clip.html, /assets/*).
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'vite';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));
const devBackend = process.env.ONAIR_DEV_BACKEND ?? 'http://127.0.0.1:8080';

/** Dev server only: serve watch.html for /watch/<slug> and console.html for /console/*, as the real server does. */
function watchRoute(): Plugin {
  return {
    name: 'onair-watch-route',
    configureServer(server) {
      server.middlewares.use((req, _res, next) => {
        if (req.url !== undefined && /^\/watch\/[^/?]+/.test(req.url)) req.url = '/watch.html';
        else if (req.url !== undefined && /^\/clip\/[^/?]+/.test(req.url)) req.url = '/clip.html';
        else if (req.url !== undefined && /^\/console(\/[^?]*)?(\?|$)/.test(req.url)) req.url = '/console.html';
        next();
      });
    },
  };
}

export default defineConfig({
  root,
  base: '/',
  publicDir: false,
  plugins: [watchRoute()],
  server: {
    proxy: { '/api': devBackend, '/live': devBackend, '/clips': devBackend },
  },
  build: {
    outDir: fileURLToPath(new URL('../dist/player', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2020',
    sourcemap: true,
    // hls.js alone is ~590 kB minified (~180 kB gzip); the watch page needs all of it.
    chunkSizeWarningLimit: 800,
    rolldownOptions: {
      input: {
        index: fileURLToPath(new URL('index.html', import.meta.url)),
        watch: fileURLToPath(new URL('watch.html', import.meta.url)),
        console: fileURLToPath(new URL('console.html', import.meta.url)),
        clip: fileURLToPath(new URL('clip.html', import.meta.url)),
      },
    },
  },
});
