/**
 * The small job that end-to-end tests run through real processes (`arbor coordinator`,
 * `arbor bench distributed`): the embedded MNIST, a tree of depth 4 with its top 2 levels
 * frozen (4 shards), leaves of width 8, one epoch of pretraining. Tests add their budget.
 */
export const PROCESS_JOB: readonly string[] = [
  ...['--data', 'mnist', '--depth', '4', '--frozen', '2', '--leaf', '8', '--pretrain-epochs', '1'],
];
