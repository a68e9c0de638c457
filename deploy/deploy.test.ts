// The deployment files agree with the code: every environment variable that compose.yaml, the k8s manifests and
// `npm run cluster` give a role process is a setting of config/schema.ts (or one of the few external names onair
// reads), HAProxy's variables are the ones deploy/haproxy.cfg uses, the files parse, and `haproxy -c` accepts the
// configuration with the environment each of them gives it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { configSchema } from '../config/schema.ts';
import { envName, loadConfig } from '../config/load.ts';
import { clusterLayout, haproxySlots, planCluster } from '../scripts/cluster/cluster.ts';

const here = import.meta.dirname;
const read = (file: string) => readFileSync(join(here, file), 'utf8');
const settings = new Set(Object.keys(configSchema.shape).map(envName));
/** Names onair reads besides its settings (config/load.ts), and the runtime's own. */
const externals = new Set(['REDIS_URL', 'DATABASE_URL', 'NODE_ENV']);
/** Kubernetes only: downward-API values other variables are built from (`$(POD_IP)`); onair ignores them. */
const k8sHelpers = new Set(['POD_IP']);
const haproxy = '/usr/sbin/haproxy';

/** Asserts that every name in `names` is a setting or an allowed external. */
function assertKnown(where: string, names: Iterable<string>, extra: Set<string> = new Set()): void {
  for (const name of names) {
    assert.ok(
      settings.has(name) || externals.has(name) || extra.has(name),
      `${where}: ${name} is neither a setting (config/schema.ts) nor an allowed external`,
    );
  }
}

/** The YAML parser, when the `yaml` package is installed (it is not a declared dependency yet: the checks needing it skip). */
type YamlModule = {
  parse(text: string, options?: { merge?: boolean }): unknown;
  parseAllDocuments(text: string): { toJS(): unknown; errors: unknown[] }[];
};
let yaml: YamlModule | undefined;
try {
  const name = 'yaml';
  yaml = (await import(name)) as YamlModule;
} catch {
  yaml = undefined;
}
const noYaml = yaml === undefined && 'the yaml package is not installed: add it to devDependencies (structure checks skipped)';

/** ALL_CAPS keys and `- name: ALL_CAPS` entries of a YAML file: its environment variable names, found without a parser. */
function capsKeys(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^\s*(?:- name: )?([A-Z][A-Z0-9_]+)(?::|\s*$)/gm)) names.add(m[1]!);
  return names;
}

/** The variables deploy/haproxy.cfg expands. */
function haproxyVariables(): Set<string> {
  return new Set([...read('haproxy.cfg').matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1]!));
}

/** `haproxy -c` of deploy/haproxy.cfg with `env`: its output (warnings included); throws with the output when invalid. */
function haproxyCheck(env: Record<string, string>): string {
  try {
    return execFileSync(haproxy, ['-c', '-f', join(here, 'haproxy.cfg')], {
      env: { PATH: process.env.PATH, ...env },
      encoding: 'utf8',
      stdio: 'pipe',
    });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`haproxy -c failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err });
  }
}

/** Asserts that an HAProxy environment uses only the file's variables, and that each slot it fills is complete. */
function assertHaproxyEnv(where: string, env: Record<string, string>): void {
  const vars = haproxyVariables();
  for (const name of Object.keys(env)) assert.ok(vars.has(name), `${where}: ${name} is not a variable of deploy/haproxy.cfg`);
  for (const name of ['LB_HTTP_BIND', 'LB_RTMP_BIND']) assert.ok(env[name], `${where}: ${name} missing`);
  for (const [name] of Object.entries(env).filter(([k]) => k.endsWith('_HOST'))) {
    const slot = name.slice(0, -'_HOST'.length);
    const needs = slot.startsWith('LB_INGEST') ? ['_HTTP_PORT', '_RTMP_PORT'] : ['_HTTP_PORT'];
    for (const suffix of needs) assert.match(env[slot + suffix] ?? '', /^\d+$/, `${where}: ${slot}${suffix} missing`);
  }
}

/** compose-style `${X:-default}` → default, `${X:?message}` and `${X}` → a stand-in long enough for any secret. */
function interpolate(value: string): string {
  return value.replace(/\$\{[A-Z0-9_]+(?::-([^}]*)|:\?[^}]*)?\}/g, (_m, def: string | undefined) => def ?? 'x'.repeat(40));
}

test('deploy/haproxy.cfg: one guarded slot per server, the same count in every backend as scripts/cluster.ts assumes', () => {
  const cfg = read('haproxy.cfg');
  for (const backend of ['INGEST', 'EDGE', 'CONTROL']) {
    const guards = [...cfg.matchAll(new RegExp(`^\\.if defined\\(LB_${backend}(\\d+)_HOST\\)$`, 'gm'))].map((m) => Number(m[1]));
    const distinct = [...new Set(guards)].sort((a, b) => a - b);
    assert.deepEqual(
      distinct,
      Array.from({ length: haproxySlots }, (_, i) => i + 1),
      `${backend} slots`,
    );
  }
  // Every server line sits inside the guard of its own slot.
  const lines = cfg.split('\n');
  lines.forEach((line, i) => {
    const m = /^\s*server (\w+?)(\d+) "\$\{LB_([A-Z]+)(\d+)_HOST\}/.exec(line);
    if (!m) return;
    assert.equal(lines[i - 1], `.if defined(LB_${m[3]}${m[4]}_HOST)`, `line ${i + 1} is guarded by its slot`);
    assert.equal(m[2], m[4]);
  });
});

test('npm run cluster: role processes get settings only, HAProxy the variables of deploy/haproxy.cfg', () => {
  let next = 20_000;
  const plan = planCluster({
    layout: clusterLayout(),
    redisUrl: 'redis://127.0.0.1:6379',
    databaseUrl: 'postgres://onair@127.0.0.1:5432/onair',
    secrets: { cluster: 'c'.repeat(43), viewerToken: 'v'.repeat(43) },
    http: 'http://127.0.0.1:18080',
    lbRtmpPort: 11935,
    dir: '/tmp/cluster-plan',
    logLevel: 'info',
    env: {},
    port: () => next++,
  });
  assert.deepEqual(
    plan.processes.map((p) => p.name),
    ['origin-1', 'origin-2', 'origin-3', 'ingest-1', 'ingest-2', 'edge-1', 'edge-2', 'control-1'],
  );
  for (const p of plan.processes) {
    assertKnown(p.name, Object.keys(p.env));
    // The values are valid too (role aside: `--role` comes from the command line).
    assert.doesNotThrow(() => loadConfig(p.env), p.name);
    assert.equal(p.env.ONAIR_NODE_ID, p.name);
  }
  assert.deepEqual(
    plan.processes.flatMap((p) => (p.originUrl ? [p.env.ONAIR_ORIGIN_ADVERTISE_URL] : [])),
    plan.processes.filter((p) => p.group.origin).map((p) => p.originUrl),
  );
  assertHaproxyEnv('npm run cluster', plan.haproxyEnv);
  const hosts = Object.keys(plan.haproxyEnv).filter((k) => k.endsWith('_HOST'));
  assert.deepEqual(hosts.sort(), ['LB_CONTROL1_HOST', 'LB_EDGE1_HOST', 'LB_EDGE2_HOST', 'LB_INGEST1_HOST', 'LB_INGEST2_HOST']);
  assert.equal(plan.haproxyEnv.LB_INGEST2_RTMP_PORT, plan.processes.find((p) => p.name === 'ingest-2')!.env.ONAIR_RTMP_PORT);
});

test('deploy/compose.yaml: settings only for onair, the cluster of npm run cluster behind the same haproxy.cfg', { skip: noYaml }, () => {
  const text = read('compose.yaml');
  const doc = yaml!.parse(text, { merge: true }) as {
    services: Record<string, { command?: string[]; environment?: Record<string, string>; volumes?: string[]; image?: string }>;
  };
  const services = doc.services;
  const onair = Object.entries(services).filter(([, s]) => s.image === 'onair:latest');
  assert.deepEqual(onair.map(([n]) => n).sort(), ['control1', 'edge1', 'edge2', 'ingest1', 'ingest2', 'origin1', 'origin2', 'origin3']);
  const names = new Set<string>();
  for (const [name, s] of onair) {
    const env = s.environment ?? {};
    Object.keys(env).forEach((k) => names.add(k));
    assertKnown(`compose ${name}`, Object.keys(env));
    assert.deepEqual(s.command?.slice(-2), ['--role', name.replace(/\d+$/, '')], `${name} runs its role`);
    assert.equal(env.ONAIR_NODE_ID, name);
    const values = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(String(v))]));
    assert.doesNotThrow(() => loadConfig(values), `compose ${name}: its values are valid settings`);
  }
  for (const name of Object.keys(services.postgres?.environment ?? {})) assert.match(name, /^POSTGRES_/);
  const lb = services.haproxy!;
  assert.ok(lb.volumes?.includes('./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro'), 'HAProxy runs deploy/haproxy.cfg');
  const lbEnv = lb.environment ?? {};
  assertHaproxyEnv('compose haproxy', lbEnv);
  const hosts = (prefix: string) =>
    Object.entries(lbEnv)
      .filter(([k]) => k.startsWith(prefix) && k.endsWith('_HOST'))
      .map(([, v]) => v)
      .sort();
  assert.deepEqual(hosts('LB_INGEST'), ['ingest1', 'ingest2']);
  assert.deepEqual(hosts('LB_EDGE'), ['edge1', 'edge2']);
  assert.deepEqual(hosts('LB_CONTROL'), ['control1']);
  // The parser and the plain scan agree on the names (the scan is what runs when the parser is missing).
  for (const n of names) assert.ok(capsKeys(text).has(n), `${n} found by the scan`);
});

test('deploy/compose.yaml: every environment name is a setting, an allowed external, POSTGRES_* or HAProxy’s (plain scan)', () => {
  const vars = haproxyVariables();
  for (const name of capsKeys(read('compose.yaml'))) {
    if (name.startsWith('POSTGRES_') || vars.has(name)) continue;
    assertKnown('compose.yaml', [name]);
  }
});

/** Every YAML document of deploy/k8s, by file. */
function k8sDocs(): { file: string; doc: Record<string, unknown> & { kind: string; metadata: { name: string } } }[] {
  const files = readdirSync(join(here, 'k8s')).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  return files.flatMap((file) =>
    yaml!.parseAllDocuments(read(join('k8s', file))).map((d) => {
      assert.deepEqual(d.errors, [], `${file} parses`);
      return { file, doc: d.toJS() as Record<string, unknown> & { kind: string; metadata: { name: string } } };
    }),
  );
}

interface Container {
  args: string[];
  env?: { name: string }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  readinessProbe?: { httpGet?: { path: string } };
  livenessProbe?: { httpGet?: { path: string } };
}
type Labels = Record<string, string>;

test('deploy/k8s: a Deployment per role with /healthz probes, settings only, Services, PDBs and an edge HPA', { skip: noYaml }, () => {
  const kustomization = yaml!.parse(read('k8s/kustomization.yaml')) as { resources: string[] };
  const files = readdirSync(join(here, 'k8s')).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  assert.deepEqual([...kustomization.resources].sort(), files.sort(), 'kustomization lists every manifest');
  const docs = k8sDocs().map((d) => d.doc);
  const of = (kind: string) => docs.filter((d) => d.kind === kind);
  const configMap = of('ConfigMap')[0] as unknown as { data: Record<string, string> };
  const secret = of('Secret')[0] as unknown as { stringData: Record<string, string> };
  assertKnown('k8s ConfigMap', Object.keys(configMap.data));
  assertKnown('k8s Secret', Object.keys(secret.stringData));
  const deployments = of('Deployment') as unknown as {
    metadata: { name: string };
    spec: { selector: { matchLabels: Labels }; template: { metadata: { labels: Labels }; spec: { containers: Container[] } } };
  }[];
  const roles = deployments.map((d) => d.spec.template.metadata.labels['app.kubernetes.io/component']);
  assert.deepEqual([...roles].sort(), ['control', 'edge', 'ingest', 'origin']);
  for (const d of deployments) {
    const role = d.spec.template.metadata.labels['app.kubernetes.io/component']!;
    const c = d.spec.template.spec.containers[0]!;
    assert.deepEqual(c.args.slice(-2), ['--role', role]);
    assert.equal(c.readinessProbe?.httpGet?.path, '/healthz', `${role} readiness`);
    assert.equal(c.livenessProbe?.httpGet?.path, '/healthz', `${role} liveness`);
    assertKnown(
      `k8s ${role}`,
      (c.env ?? []).map((e) => e.name),
      k8sHelpers,
    );
    assert.deepEqual(
      c.envFrom?.map((e) => e.configMapRef?.name ?? e.secretRef?.name),
      ['onair-config', 'onair-secrets'],
    );
    for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) assert.equal(d.spec.template.metadata.labels[k], v);
    // The settings a pod gets are valid once the Secret's placeholders are replaced (and invalid until then).
    const env = { ...configMap.data, ...secret.stringData, ONAIR_NODE_ID: `onair-${role}-0` };
    for (const e of c.env ?? [])
      if ('value' in e) (env as Record<string, string>)[e.name] = String((e as { value: string }).value).replace('$(POD_IP)', '10.1.2.3');
    assert.throws(() => loadConfig(env), /ONAIR_CLUSTER_SECRET/, 'the placeholder secrets refuse to start');
    const real = { ...env, ONAIR_CLUSTER_SECRET: 'c'.repeat(40), ONAIR_VIEWER_TOKEN_SECRET: 'v'.repeat(40) };
    assert.doesNotThrow(() => loadConfig(real), `k8s ${role}`);
  }
  const podLabels = deployments.map((d) => d.spec.template.metadata.labels);
  const selects = (sel: Labels) => podLabels.some((l) => Object.entries(sel).every(([k, v]) => l[k] === v));
  for (const s of of('Service') as unknown as { metadata: { name: string }; spec: { selector: Labels } }[]) {
    assert.ok(selects(s.spec.selector), `Service ${s.metadata.name} selects pods`);
  }
  const pdbs = of('PodDisruptionBudget') as unknown as { spec: { selector: { matchLabels: Labels } } }[];
  for (const d of deployments) {
    assert.ok(
      pdbs.some((p) => Object.entries(p.spec.selector.matchLabels).every(([k, v]) => d.spec.template.metadata.labels[k] === v)),
      `${d.metadata.name} has a PodDisruptionBudget`,
    );
  }
  const hpa = of('HorizontalPodAutoscaler') as unknown as { spec: { scaleTargetRef: { kind: string; name: string } } }[];
  assert.deepEqual(
    hpa.map((h) => h.spec.scaleTargetRef),
    [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'onair-edge' }],
  );
  // The Ingress routes as deploy/haproxy.cfg does.
  const ingress = of('Ingress')[0] as unknown as {
    spec: { rules: { http: { paths: { path: string; backend: { service: { name: string } } }[] } }[] };
  };
  const routes = Object.fromEntries(ingress.spec.rules[0]!.http.paths.map((p) => [p.path, p.backend.service.name]));
  assert.deepEqual(routes, {
    '/live/': 'onair-edge',
    '/clips/': 'onair-edge',
    '/whep/': 'onair-edge',
    '/ws': 'onair-edge',
    '/whip/': 'onair-ingest',
    '/': 'onair-control',
  });
});

test('deploy/k8s: every environment name is a setting, an allowed external or POD_IP (plain scan)', () => {
  for (const file of readdirSync(join(here, 'k8s')).filter((f) => f.endsWith('.yaml'))) {
    assertKnown(`k8s/${file}`, capsKeys(read(join('k8s', file))), k8sHelpers);
  }
});

test(
  'haproxy -c accepts deploy/haproxy.cfg with the environment of npm run cluster and of compose.yaml',
  { skip: !existsSync(haproxy) && `${haproxy} is not installed (scripts/install-prereqs.sh installs it; CI does)` },
  () => {
    let next = 21_000;
    const plan = planCluster({
      layout: clusterLayout({ ingests: 8, origins: 1, edges: 8, controls: 8 }),
      redisUrl: 'redis://127.0.0.1:6379',
      databaseUrl: 'postgres://onair@127.0.0.1:5432/onair',
      secrets: { cluster: 'c'.repeat(43), viewerToken: 'v'.repeat(43) },
      http: 'http://127.0.0.1:18080',
      lbRtmpPort: 11935,
      dir: '/tmp/cluster-plan',
      logLevel: 'info',
      env: {},
      port: () => next++,
    });
    const local = haproxyCheck(plan.haproxyEnv);
    assert.doesNotMatch(local, /WARNING|ALERT/, 'no warning with every slot filled');
    // Without a parser, compose's HAProxy environment is read line by line (it is flat `KEY: 'value'`).
    const compose = read('compose.yaml');
    const block = compose.slice(compose.indexOf('  haproxy:'));
    const env = Object.fromEntries([...block.matchAll(/^\s+(LB_[A-Z0-9_]+): '?([^'\n]*)'?$/gm)].map((m) => [m[1]!, m[2]!]));
    assert.ok(Object.keys(env).length >= 10, 'compose haproxy environment found');
    // Compose names resolve inside its network only: here they may not, which HAProxy reports as a warning.
    const out = haproxyCheck(env);
    for (const line of out.split('\n').filter((l) => /WARNING|ALERT/.test(l))) assert.match(line, /could not resolve address/);
  },
);
