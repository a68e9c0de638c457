// Reads a process's CPU time and memory from /proc (Linux), for benchmarks.
import { readFileSync, readdirSync } from 'node:fs';

const ticksPerSec = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used, or undefined if it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSec;
  } catch {
    return undefined;
  }
}

/** Resident set size in bytes, or undefined if the process is gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Pids of the direct children of `pid` whose command name is `comm`. */
export function childrenNamed(pid: number, comm: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const c = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid && c === comm) out.push(Number(name));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/** The machine's CPU tick counters (all cores) from the first line of /proc/stat. */
function machineTicks(): { total: number; idle: number; steal: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user/nice)
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  return { total: user + nice + system + idle + iowait + irq + softirq + steal, idle: idle + iowait, steal };
}

/**
 * Starts watching the whole machine; `read()` gives, since the start, the share of CPU time the
 * hypervisor stole (a VM's noisy neighbours: stolen time is time every process here lost) and the
 * share left idle, in percent. Benchmarks report it so their figures can be read in context.
 */
export function machineMeter(): { read(): { stealPct: number; idlePct: number } } {
  const t0 = machineTicks();
  return {
    read() {
      const t = machineTicks();
      const total = t.total - t0.total || 1;
      const pct = (x: number) => Math.round((1000 * x) / total) / 10;
      return { stealPct: pct(t.steal - t0.steal), idlePct: pct(t.idle - t0.idle) };
    },
  };
}
