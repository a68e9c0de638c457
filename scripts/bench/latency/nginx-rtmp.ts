// The do-it-yourself peer of the latency bench: nginx with Debian's nginx-rtmp module writing HLS
// (1 s fragments, 6 s playlist) and serving it over HTTP, from a generated config in a temp dir.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where the nginx-rtmp peer listens once started. */
export interface NginxRtmp {
  /** Publish here: rtmp://127.0.0.1:<port>/live/<name>. */
  rtmpBase: string;
  /** Playlist of stream `name`. */
  hlsUrl(name: string): string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Options of the nginx-rtmp peer. */
export interface NginxRtmpOptions {
  rtmpPort: number;
  httpPort: number;
  nginxPath?: string;
  modulePath?: string;
}

/** nginx.conf for an RTMP application with HLS on, served by nginx's own http on loopback. */
export function nginxRtmpConf(dir: string, o: NginxRtmpOptions): string {
  const t = (name: string) => join(dir, name);
  return `load_module ${o.modulePath ?? '/usr/lib/nginx/modules/ngx_rtmp_module.so'};
worker_processes 1;
pid ${t('nginx.pid')};
error_log ${t('error.log')} warn;
events { worker_connections 256; }
rtmp {
  server {
    listen 127.0.0.1:${o.rtmpPort};
    application live {
      live on;
      hls on;
      hls_path ${t('hls')};
      hls_fragment 1s;
      hls_playlist_length 6s;
    }
  }
}
http {
  access_log off;
  client_body_temp_path ${t('tmp-body')};
  proxy_temp_path ${t('tmp-proxy')};
  fastcgi_temp_path ${t('tmp-fastcgi')};
  uwsgi_temp_path ${t('tmp-uwsgi')};
  scgi_temp_path ${t('tmp-scgi')};
  types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
  server {
    listen 127.0.0.1:${o.httpPort};
    location /hls/ {
      alias ${t('hls')}/;
      add_header Cache-Control no-cache;
      add_header Access-Control-Allow-Origin *;
    }
  }
}
`;
}

/** Builds the peer; start() runs `nginx -p <tmp> -c <conf> -g 'daemon off;'`, stop() ends it by its pid and removes the dir. */
export function createNginxRtmp(o: NginxRtmpOptions): NginxRtmp {
  let dir: string | undefined;
  let child: ChildProcess | undefined;
  let exited: Promise<void> | undefined;
  let log = '';
  return {
    rtmpBase: `rtmp://127.0.0.1:${o.rtmpPort}/live`,
    hlsUrl: (name) => `http://127.0.0.1:${o.httpPort}/hls/${name}.m3u8`,
    async start() {
      dir = mkdtempSync(join(tmpdir(), 'onair-nginx-rtmp-'));
      chmodSync(dir, 0o755); // started as root, nginx's workers run as nobody and must reach hls/
      mkdirSync(join(dir, 'hls'));
      const conf = join(dir, 'nginx.conf');
      writeFileSync(conf, nginxRtmpConf(dir, o));
      const c = spawn(o.nginxPath ?? 'nginx', ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf, '-g', 'daemon off;'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child = c;
      c.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
      exited = new Promise((resolve) => c.on('close', () => resolve()));
      // Ready when its HTTP port answers (a 404 for a missing playlist is fine).
      const deadline = Date.now() + 15_000;
      for (;;) {
        if (c.exitCode !== null) {
          const errLog = existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '';
          throw new Error(`nginx exited with ${c.exitCode}: ${log}${errLog}`);
        }
        const ok = await fetch(`http://127.0.0.1:${o.httpPort}/hls/`).then(
          () => true,
          () => false,
        );
        if (ok) return;
        if (Date.now() > deadline) throw new Error(`nginx did not answer on ${o.httpPort}: ${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      const c = child;
      child = undefined;
      if (c && c.exitCode === null && c.signalCode === null) {
        c.kill('SIGTERM');
        const t = setTimeout(() => c.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
      dir = undefined;
    },
  };
}
