import { type Dataset, subset } from '../../shared/data/dataset.ts';
import { hardCrossEntropy } from '../../shared/fff/hard-loss.ts';
import { type TopNodes, routeThroughTop } from '../../shared/fff/top-blob.ts';
import type { FFFWeights } from '../../shared/fff/weights.ts';

/** A shard as the served model sees it: its subtree and its validation slice's loss. */
export interface ServedShard {
  readonly id: number;
  readonly subtree: FFFWeights;
  readonly valLoss: number;
  readonly valSamples: number;
}

/**
 * What moving the top `from` -> `to` does to the served model's loss on `val` (every
 * shard's validation slice): the loss now, from the shards' own, and its change, from the
 * samples whose route changes, each served by the subtree it reaches.
 */
export function servedLossChange(
  shards: readonly ServedShard[],
  val: Dataset,
  from: TopNodes,
  to: TopNodes,
): { before: number; change: number } {
  const before = shards.reduce((sum, s) => sum + s.valLoss * s.valSamples, 0) / Math.max(1, val.n);
  const old = routeThroughTop(from, val.x, val.n);
  const now = routeThroughTop(to, val.x, val.n);
  const moved = [...old.keys()].filter((i) => old[i] !== now[i]);
  if (moved.length === 0) return { before, change: 0 };
  const lossIn = (routes: Int32Array): number =>
    shards.reduce((sum, shard) => {
      const mine = Int32Array.from(moved.filter((i) => routes[i] === shard.id));
      return mine.length === 0 ? sum : sum + hardCrossEntropy(shard.subtree, subset(val, mine)) * mine.length;
    }, 0);
  return { before, change: (lossIn(now) - lossIn(old)) / val.n };
}
