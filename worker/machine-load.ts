/**
 * How busy the rest of the machine is: the CPU time all cores spent busy since the last
 * call, less this process's own, as a share of all cores' time (os.cpus() and
 * process.cpuUsage(), both cumulative since boot or start).
 */
import { cpus } from 'node:os';

interface Totals {
  readonly allMs: number;
  readonly busyMs: number;
  readonly ownMs: number;
}

function totals(): Totals {
  let allMs = 0;
  let idleMs = 0;
  for (const { times } of cpus()) {
    allMs += times.user + times.nice + times.sys + times.idle + times.irq;
    idleMs += times.idle;
  }
  const own = process.cpuUsage();
  return { allMs, busyMs: allMs - idleMs, ownMs: (own.user + own.system) / 1000 };
}

/** A sampler of others' share of the machine since its previous sample (0 at the first). */
export function othersLoadSampler(): () => number {
  let previous = totals();
  return () => {
    const current = totals();
    const all = current.allMs - previous.allMs;
    const others = current.busyMs - previous.busyMs - (current.ownMs - previous.ownMs);
    previous = current;
    return all > 0 ? Math.min(1, Math.max(0, others / all)) : 0;
  };
}
