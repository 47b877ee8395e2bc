import { type Dataset, subset } from '../../shared/data/dataset.ts';
import { type TopNodes, routeThroughTop } from '../../shared/fff/top-blob.ts';
import { createRng, shuffleInPlace } from '../../shared/random.ts';

export interface RoutedShard {
  readonly id: number;
  readonly train: Dataset;
  readonly val: Dataset;
}

export interface Routing {
  readonly shards: RoutedShard[];
  /** Each training sample's shard. */
  readonly shardOf: Int32Array;
  /** Per top node, the share of the samples reaching it that it sends right. */
  readonly rightShare: Float32Array;
}

/**
 * The samples held out for validation whatever their shard: the same `fraction` of the
 * training set every time, so that re-routing moves a sample between shards but never
 * between training and validation.
 */
export function heldOutSamples(n: number, fraction: number, seed: number): Uint8Array {
  const order = Int32Array.from({ length: n }, (_, i) => i);
  shuffleInPlace(order, createRng(seed ^ 0x51ab));
  const held = new Uint8Array(n);
  for (let i = 0; i < Math.round(n * fraction); i++) held[order[i]!] = 1;
  return held;
}

/** Shares each node of the top K levels sends right, from the samples per shard. */
export function rightShares(perShard: readonly number[], levels: number): Float32Array {
  const shares = new Float32Array(2 ** levels - 1);
  for (let k = 0; k < levels; k++) {
    const width = 2 ** (levels - k);
    for (let j = 0; j < 2 ** k; j++) {
      const first = j * width;
      const sum = (from: number, to: number) => perShard.slice(from, to).reduce((a, b) => a + b, 0);
      const left = sum(first, first + width / 2);
      const right = sum(first + width / 2, first + width);
      shares[2 ** k - 1 + j] = left + right === 0 ? 0.5 : right / (left + right);
    }
  }
  return shares;
}

/**
 * Routes every training sample through the top K levels (hard decisions) to its shard, in
 * index order; the held-out samples become the shards' validation slices.
 */
export function routeWithHeldOut(top: TopNodes, train: Dataset, held: Uint8Array): Routing {
  const levels = top.levels;
  const shardOf = routeThroughTop(top, train.x, train.n);
  const shards = 2 ** levels;
  const trainRows: number[][] = Array.from({ length: shards }, () => []);
  const valRows: number[][] = Array.from({ length: shards }, () => []);
  shardOf.forEach((shard, row) => (held[row] ? valRows : trainRows)[shard]!.push(row));
  return {
    shardOf,
    rightShare: rightShares(
      trainRows.map((rows) => rows.length),
      levels,
    ),
    shards: trainRows.map((rows, id) => ({
      id,
      train: { ...subset(train, Int32Array.from(rows)), name: `${train.name} shard ${id}` },
      val: { ...subset(train, Int32Array.from(valRows[id]!)), name: `${train.name} shard ${id} val` },
    })),
  };
}
