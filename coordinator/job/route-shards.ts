import { type Dataset, subset } from '../../shared/data/dataset.ts';
import { compileHardInference } from '../../shared/fff/hard-inference.ts';
import type { FFFWeights } from '../../shared/fff/weights.ts';
import { createRng, shuffleInPlace } from '../../shared/random.ts';

export interface RoutedShard {
  readonly id: number;
  /** Samples the workers train on. */
  readonly train: Dataset;
  /** Held-out samples the coordinator validates deltas with. */
  readonly val: Dataset;
}

/**
 * Routes every sample through the frozen top K levels (hard decisions) to its shard, and
 * holds out `valFraction` of each shard (at least one sample when the shard has two).
 */
export function routeShards(
  tree: FFFWeights,
  frozenLevels: number,
  train: Dataset,
  valFraction: number,
  seed: number,
): RoutedShard[] {
  const shardOf = compileHardInference(tree).routeToDepth(train.x, train.n, frozenLevels);
  const members: number[][] = Array.from({ length: 2 ** frozenLevels }, () => []);
  shardOf.forEach((shard, row) => members[shard]!.push(row));
  const rng = createRng(seed ^ 0x51ab);
  return members.map((rows, id) => {
    shuffleInPlace(rows, rng);
    const held = rows.length >= 2 ? Math.max(1, Math.round(rows.length * valFraction)) : 0;
    return {
      id,
      val: { ...subset(train, Int32Array.from(rows.slice(0, held))), name: `${train.name} shard ${id} val` },
      train: { ...subset(train, Int32Array.from(rows.slice(held))), name: `${train.name} shard ${id}` },
    };
  });
}
