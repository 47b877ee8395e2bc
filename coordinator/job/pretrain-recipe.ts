import type { Recipe } from '../../shared/fff/trainer.ts';
import type { JobConfig } from './config.ts';

/**
 * Soft with the balance term first (decisions find a balanced split before anything
 * hardens them), then hardening so that the frozen decisions are confident.
 */
export function pretrainingRecipe(config: JobConfig, batchSize: number): Recipe {
  const soft = Math.ceil(config.pretrain.epochs / 2);
  const common = { routing: 'soft', lr: config.lr, lrDecay: 'constant', train: 'all', leak: 0 } as const;
  return {
    batchSize,
    optimizer: config.optimizer,
    phases: [
      { ...common, name: 'pretrain-soft', epochs: soft, hardening: 0 },
      {
        ...common,
        name: 'pretrain-harden',
        epochs: config.pretrain.epochs - soft,
        hardening: config.hardening,
      },
    ].filter((phase) => phase.epochs > 0),
    balance: config.pretrain.balance,
    balanceLevels: config.frozen,
    seed: config.seed,
  };
}
