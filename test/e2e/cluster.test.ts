// `npm run cluster`'s core (scripts/cluster/cluster.ts) against the real thing: Redis, PostgreSQL, onair role
// processes and HAProxy running deploy/haproxy.cfg. HAProxy must route each path to the right role, a role process
// that dies must leave the others running, kill/restart must work by name, and stop() must leave no process behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { randomBytes } from 'node:crypto';
import { clusterLayout, pidAlive, startCluster, type RoleGroup } from '../../scripts/cluster/cluster.ts';
import { waitFor } from '../support/wait-for.ts';

/** A small cluster of every role: one ingest, one origin, two edges (routing by placement), one control node. */
const layout: RoleGroup[] = clusterLayout({ ingests: 1, origins: 1, edges: 2, controls: 1 });

/** Status of a request through the balancer (body drained). */
async function status(url: string, init?: RequestInit): Promise<number> {
  const r = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  await r.body?.cancel();
  return r.status;
}

/** Sends an RTMP C0+C1 and resolves with the first byte answered (S0: the RTMP version, 3), or undefined on close. */
function rtmpHandshakeByte(host: string, port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const sock = createConnection({ host, port });
    const done = (v: number | undefined) => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(5_000, () => done(undefined));
    sock.on('error', () => done(undefined));
    sock.on('close', () => done(undefined));
    sock.on('connect', () => sock.write(Buffer.concat([Buffer.from([3]), Buffer.alloc(8), randomBytes(1528)])));
    sock.once('data', (d: Buffer) => done(d[0]));
  });
}

test(
  'npm run cluster: HAProxy routes by path to the roles; a dead process leaves the others up; stop() leaves nothing',
  { skip: !existsSync('/usr/sbin/haproxy') && 'haproxy is not installed (scripts/install-prereqs.sh installs it)' },
  async () => {
    const events: string[] = [];
    const cluster = await startCluster({ layout, logLevel: 'warn', onEvent: (m) => events.push(m) });
    // Every pid the cluster ever had (restarts add some), to check that none is left after stop().
    const pids = new Map(cluster.processes.map((p) => [p.pid, p.name]));
    const dataDirs = cluster.processes.flatMap((p) => (p.dataDir ? [p.dataDir] : []));
    try {
      assert.deepEqual(
        cluster.processes.map((p) => p.name),
        ['origin-1', 'ingest-1', 'edge-1', 'edge-2', 'control-1', 'haproxy', 'redis', 'postgres'],
      );
      for (const p of cluster.processes) assert.ok(p.pid !== undefined && pidAlive(p.pid), `${p.name} runs`);
      assert.match(cluster.http, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.match(cluster.rtmp, /^rtmp:\/\/127\.0\.0\.1:\d+\/live$/);
      assert.match(cluster.database, /^postgres:\/\/onair@127\.0\.0\.1:\d+\/onair$/);
      const url = (name: string) => cluster.processes.find((p) => p.name === name)!.url;

      // The rest → control: /healthz answers as the control node, and the API exists there (an edge has none).
      const health = await fetch(`${cluster.http}/healthz`);
      assert.equal(health.status, 200);
      assert.equal(((await health.json()) as { role: string }).role, 'control');
      assert.equal(await status(`${url('edge-1')}/api/v1/events`), 404, 'an edge has no API');
      assert.notEqual(await status(`${cluster.http}/api/v1/events`), 404, 'the API is routed to control');
      assert.equal(await status(`${cluster.http}/lb/healthz`), 200);

      // RTMP → an ingest, through a PROXY v2 header the ingest accepts from the balancer: the handshake is answered.
      const lbRtmp = new URL(cluster.rtmp.replace(/^rtmp:/, 'http:'));
      assert.equal(await rtmpHandshakeByte(lbRtmp.hostname, Number(lbRtmp.port)), 3);

      // /live/* → edges. One edge dies without being asked: reported, the others keep running and serving.
      const live = `${cluster.http}/live/no-such-event/master.m3u8`;
      assert.notEqual(await status(live), 503);
      const edge1 = cluster.processes.find((p) => p.name === 'edge-1')!.pid!;
      process.kill(edge1, 'SIGKILL');
      await waitFor('edge-1 reported dead', () => events.some((e) => e.startsWith(`edge-1 (pid ${edge1}) exited unexpectedly`)));
      assert.equal(cluster.processes.find((p) => p.name === 'edge-1')!.pid, undefined);
      for (let i = 0; i < 5; i++) assert.notEqual(await status(live), 503, 'edge-2 serves /live/ alone');
      // Both edges gone: /live/ has no server (503) while the rest still answers: the path went to the edges.
      await cluster.kill('edge-2');
      await waitFor('/live/ without edges', async () => (await status(live)) === 503, 15_000);
      assert.equal(await status(`${cluster.http}/healthz`), 200);
      // restart() by name brings one back on its port.
      await cluster.restart('edge-1');
      await waitFor('/live/ served again', async () => (await status(live)) !== 503, 15_000);
      assert.ok(!events.some((e) => e.startsWith('edge-2') && e.includes('unexpectedly')), 'kill() is no surprise');

      // /whip/* → ingests: answered by the ingest; with it killed, no server (503), the rest unaffected.
      const whip = `${cluster.http}/whip/no-such-event`;
      const sdp = { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: 'v=0\r\n' };
      assert.notEqual(await status(whip, sdp), 503);
      await cluster.kill('ingest-1');
      await waitFor('/whip/ without ingests', async () => (await status(whip, sdp)) === 503, 15_000);
      assert.equal(await status(`${cluster.http}/healthz`), 200);

      // The bus and the store stop and come back by name (the fault suite's Redis and PostgreSQL outages).
      for (const name of ['redis', 'postgres']) {
        const before = cluster.processes.find((p) => p.name === name)!.pid!;
        await cluster.kill(name, 'SIGTERM');
        assert.ok(!pidAlive(before), `${name} stopped`);
        assert.equal(cluster.processes.find((p) => p.name === name)!.pid, undefined);
        await cluster.restart(name);
        const after = cluster.processes.find((p) => p.name === name)!.pid;
        assert.ok(after !== undefined && after !== before && pidAlive(after), `${name} runs again`);
        pids.set(before, name);
      }
    } finally {
      for (const p of cluster.processes) pids.set(p.pid, p.name);
      await cluster.stop();
    }
    assert.ok(pids.size >= 9, 'the restarted edge has its own pid');
    for (const [pid, name] of pids) assert.ok(pid === undefined || !pidAlive(pid), `${name} (pid ${pid}) is gone`);
    for (const dir of dataDirs) assert.ok(!existsSync(dir), `${dir} removed`);
    await cluster.stop(); // twice: no-op
  },
);
