/** Several simulations of one job and crowd under different seeds: their mean and spread. */
import type { SimulationResult } from './summary.ts';

export interface Spread {
  readonly mean: number;
  readonly sd: number;
  readonly min: number;
  readonly max: number;
}

export interface SeedSummary {
  readonly seeds: number;
  readonly hard_test_acc: Spread;
  readonly virtual_wall_s: Spread;
  readonly utilization: Spread;
  readonly idle_fraction: Spread;
  readonly wasted_fraction: Spread;
  readonly rejected: Spread;
  /** Per target: the spread of the times of the runs that reached it, and how many did. */
  readonly time_to_acc: Readonly<Record<string, { readonly reached: number } & Partial<Spread>>>;
  readonly runs: readonly SimulationResult[];
}

export function spreadOf(values: readonly number[]): Spread {
  const mean = values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, values.length - 1);
  return { mean, sd: Math.sqrt(variance), min: Math.min(...values), max: Math.max(...values) };
}

export function summarizeSeeds(runs: readonly SimulationResult[]): SeedSummary {
  const of = (pick: (r: SimulationResult) => number) => spreadOf(runs.map(pick));
  const targets = Object.keys(runs[0]?.time_to_acc ?? {});
  return {
    seeds: runs.length,
    hard_test_acc: of((r) => r.hard_test_acc),
    virtual_wall_s: of((r) => r.virtual_wall_s),
    utilization: of((r) => r.utilization),
    idle_fraction: of((r) => r.idle_fraction),
    wasted_fraction: of((r) => r.wasted_fraction),
    rejected: of((r) => r.rejected),
    time_to_acc: Object.fromEntries(
      targets.map((target) => {
        const times = runs.map((r) => r.time_to_acc[target]).filter((t): t is number => t != null);
        return [target, { reached: times.length, ...(times.length > 0 ? spreadOf(times) : {}) }];
      }),
    ),
    runs,
  };
}
