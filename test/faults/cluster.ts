// The local cluster as the fault suite and bench:origins drive it: scripts/cluster/cluster.ts's startCluster(), seen
// through the part of its API used here, plus what a fault needs on top (a node's process by placement id, the
// edge a viewer uses, a machine-like kill that takes the node's ffmpeg children with it).
import { readdirSync, readFileSync } from 'node:fs';
import {
  clusterLayout,
  startCluster,
  type Cluster,
  type ClusterOptions,
  type ClusterProcessInfo,
  type RoleGroup,
} from '../../scripts/cluster/cluster.ts';

/** A running cluster, as scripts/cluster/cluster.ts starts it. */
export type FaultCluster = Cluster;

/** Options of startCluster; `layout` may also extend the launcher's default layout (clusterLayout()). */
export interface FaultClusterOptions extends Omit<ClusterOptions, 'layout'> {
  layout?: RoleGroup[] | ((defaults: RoleGroup[]) => RoleGroup[]);
}

/** Starts the local cluster (scripts/cluster/cluster.ts), with the default layout or one derived from it. */
export async function startFaultCluster(options: FaultClusterOptions): Promise<FaultCluster> {
  const defaults = clusterLayout();
  const layout = typeof options.layout === 'function' ? options.layout(defaults) : (options.layout ?? defaults);
  return startCluster({ ...options, layout });
}

/** The process a placement names: its node id is the process name (ONAIR_NODE_ID), else matched by origin URL. */
export function processForNode(cluster: FaultCluster, node: { id: string; url?: string } | string): ClusterProcessInfo | undefined {
  const id = typeof node === 'string' ? node : node.id;
  const url = typeof node === 'string' ? undefined : node.url?.replace(/\/+$/, '');
  return (
    cluster.processes.find((p) => p.name === id) ??
    (url ? cluster.processes.find((p) => p.originUrl?.replace(/\/+$/, '') === url) : undefined)
  );
}

/** Pids of every descendant of `pid` (children, their children, …), from /proc. */
export function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parentOf.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone while we looked
    }
  }
  const out: number[] = [];
  const frontier = [pid];
  while (frontier.length) {
    const p = frontier.pop()!;
    for (const [child, parent] of parentOf) {
      if (parent !== p) continue;
      out.push(child);
      frontier.push(child);
    }
  }
  return out;
}

/**
 * kill -9 of a node as a machine dies: the node process through the cluster (which then expects its exit), and at
 * the same moment its descendants (an origin's ffmpeg transcoders), by pid, so that none outlives it.
 */
export async function killNode(cluster: FaultCluster, name: string): Promise<void> {
  const pid = cluster.processes.find((p) => p.name === name)?.pid;
  const kids = pid === undefined ? [] : descendants(pid);
  const killed = cluster.kill(name, 'SIGKILL');
  for (const k of kids) {
    try {
      process.kill(k, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await killed;
}

/** The sum of every `onair_edge_requests_total` sample at an edge's /metrics (undefined when unreadable). */
export async function edgeRequests(edgeUrl: string): Promise<number | undefined> {
  try {
    const text = await (await fetch(`${edgeUrl}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
    let sum = 0;
    let seen = false;
    for (const m of text.matchAll(/^onair_edge_requests_total(?:\{[^}]*\})? (\S+)$/gm)) {
      sum += Number(m[1]);
      seen = true;
    }
    return seen ? sum : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The edge the viewer's requests reach: the one whose request counter grows most over `windowMs` while the viewer
 * plays (the only HLS client of the run). Undefined when no edge's metrics can be read.
 */
export async function edgeServingViewer(
  cluster: FaultCluster,
  windowMs = 3000,
): Promise<{ name: string; deltas: Record<string, number> } | undefined> {
  const edges = cluster.processes.filter((p) => p.role === 'edge' && p.pid !== undefined);
  const before = await Promise.all(edges.map((e) => edgeRequests(e.url)));
  await new Promise((r) => setTimeout(r, windowMs));
  const after = await Promise.all(edges.map((e) => edgeRequests(e.url)));
  const deltas: Record<string, number> = {};
  let best: string | undefined;
  edges.forEach((e, i) => {
    const b = before[i];
    const a = after[i];
    if (a === undefined || b === undefined) return;
    deltas[e.name] = a - b;
    if (best === undefined || a - b > deltas[best]!) best = e.name;
  });
  return best === undefined ? undefined : { name: best, deltas };
}
