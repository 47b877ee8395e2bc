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
}

/**
 * The default schedule (see BENCHMARKS.md for the experiments behind it):
 * a third of the epochs soft without hardening, then hardening h, then ~27% of
 * hard-routed leaf fine-tuning at 0.3x the rate, which trains exactly the function
 * that serving computes.
 */
export function buildRecipe(options: RecipeOptions): Recipe {
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
    phases: phases.filter((phase) => phase.epochs > 0),
    balance: options.balance,
    balanceLevels: options.frozenLevels,
    seed: options.seed,
  };
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
