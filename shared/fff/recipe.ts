import type { Phase, Recipe } from './trainer.ts';

export interface RecipeOptions {
  readonly epochs: number;
  readonly batchSize: number;
  readonly lr: number;
  readonly optimizer: Recipe['optimizer'];
  readonly hardening: number;
  readonly leak: number;
  readonly balance: number;
  readonly frozenLevels: number;
  readonly seed: number;
  /** Central twin of a distributed top: see Recipe.top. */
  readonly top?: Recipe['top'];
}

/**
 * A stretch of a run's schedule as fractions of the run, [from, to): a work unit trains
 * its window of the shard's schedule, so that a sequence of short units follows the same
 * recipe as one long one.
 */
export interface ScheduleWindow {
  readonly from: number;
  readonly to: number;
}

export const WHOLE_RUN: ScheduleWindow = { from: 0, to: 1 };

/**
 * The default schedule (see BENCHMARKS.md for the experiments behind it):
 * a third of the epochs soft without hardening, then hardening h, then ~27% of
 * hard-routed leaf fine-tuning at 0.3x the rate, which trains exactly the function
 * that serving computes. With a window, only that stretch of the schedule (phases cut
 * where the window cuts them, a decaying rate continuing where it was).
 */
export function buildRecipe(options: RecipeOptions, window: ScheduleWindow = WHOLE_RUN): Recipe {
  const total = Math.max(1, Math.round(options.epochs));
  const hardLeaves = total >= 3 ? Math.max(1, Math.round(total * 0.27)) : 0;
  const soft = Math.round(total / 3);
  const harden = total - hardLeaves - soft;
  const base = { lrDecay: 'constant', train: 'all', routing: 'soft', leak: options.leak } as const;
  const phases: Phase[] = [
    { ...base, name: 'soft', epochs: soft, hardening: 0, lr: options.lr },
    { ...base, name: 'harden', epochs: harden, hardening: options.hardening, lr: options.lr },
    {
      name: 'hard-leaves',
      epochs: hardLeaves,
      routing: 'hard',
      hardening: 0,
      lr: options.lr * 0.3,
      lrDecay: 'cosine',
      train: 'leaves',
      leak: 0,
    },
  ];
  return {
    batchSize: options.batchSize,
    optimizer: options.optimizer,
    phases: clipToWindow(
      phases.filter((phase) => phase.epochs > 0),
      total,
      window,
    ),
    balance: options.balance,
    balanceLevels: options.frozenLevels,
    seed: options.seed,
    ...(options.top !== undefined ? { top: options.top } : {}),
  };
}

/** The phases of a run of `total` epochs that fall inside `window`, with fractional epochs. */
function clipToWindow(phases: readonly Phase[], total: number, window: ScheduleWindow): Phase[] {
  if (window.from <= 0 && window.to >= 1) return [...phases];
  const clipped: Phase[] = [];
  let at = 0;
  for (const phase of phases) {
    const start = at / total;
    const end = (at + phase.epochs) / total;
    at += phase.epochs;
    const from = Math.max(start, window.from);
    const to = Math.min(end, window.to);
    if (to <= from) continue;
    const span = end - start;
    clipped.push({
      ...phase,
      epochs: (to - from) * total,
      lrWindow: { from: (from - start) / span, to: (to - start) / span },
    });
  }
  return clipped;
}

/** Optimizer steps a run needs for hardening and leaf tuning to converge (BENCHMARKS.md). */
export const TARGET_STEPS = 7000;

/**
 * The default minibatch: the largest power of two from 32 to 256 that still gives the
 * run about TARGET_STEPS steps, so that small datasets are not under-trained.
 */
export function autoBatchSize(samples: number, epochs: number): number {
  const ideal = (samples * epochs) / TARGET_STEPS;
  let batch = 32;
  while (batch * 2 <= Math.min(256, ideal)) batch *= 2;
  return batch;
}
