/**
 * What `arbor simulate` ends with: the simulated crowd beside one steady volunteer per shard
 * (the same job, the smallest crowd that keeps every shard busy) and beside the central twin
 * (`arbor train`, the same model and budget in one process).
 */
import { trainCentralTwin } from '../coordinator/job/central-twin.ts';
import type { JobConfig } from '../coordinator/job/config.ts';
import type { SimulationResult } from '../coordinator/simulate/simulation.ts';
import type { DataSplit } from '../shared/data/dataset.ts';

export interface Comparison {
  readonly crowd: { volunteers: number; hard_test_acc: number; virtual_s: number };
  readonly one_per_shard: { volunteers: number; hard_test_acc: number; virtual_s: number };
  readonly central_twin: { hard_test_acc: number; wall_s: number };
}

const row = (result: SimulationResult) => ({
  volunteers: result.volunteers,
  hard_test_acc: result.hard_test_acc,
  virtual_s: Math.round(result.virtual_wall_s),
});

/** `onePerShard` runs the steady crowd of 2^frozen volunteers (unless the crowd was that). */
export async function compareRun(
  config: JobConfig,
  data: DataSplit,
  crowd: SimulationResult,
  onePerShard: (volunteers: number) => Promise<SimulationResult>,
): Promise<Comparison> {
  const shards = 2 ** config.frozen;
  const steady = await onePerShard(shards);
  const twin = await trainCentralTwin(config, data);
  return {
    crowd: row(crowd),
    one_per_shard: row(steady),
    central_twin: { hard_test_acc: twin.hardTestAcc, wall_s: Math.round(twin.wallSeconds) },
  };
}

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;

export function describeComparison(c: Comparison): string {
  const lines: [string, string, string][] = [
    ['', 'hard test accuracy', 'time'],
    [
      `the crowd (${c.crowd.volunteers} volunteers)`,
      pct(c.crowd.hard_test_acc),
      `${c.crowd.virtual_s} virtual s`,
    ],
    [
      `one volunteer a shard (${c.one_per_shard.volunteers})`,
      pct(c.one_per_shard.hard_test_acc),
      `${c.one_per_shard.virtual_s} virtual s`,
    ],
    ['the central twin (arbor train)', pct(c.central_twin.hard_test_acc), `${c.central_twin.wall_s} s here`],
  ];
  const width = (i: 0 | 1) => Math.max(...lines.map((l) => l[i].length));
  return `\n${lines.map((l) => `${l[0].padEnd(width(0))}  ${l[1].padEnd(width(1))}  ${l[2]}`.trimEnd()).join('\n')}\n`;
}
