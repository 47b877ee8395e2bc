import {
  type FFFShape,
  type FFFWeights,
  TENSOR_NAMES,
  elementCount,
  sameShape,
  tensorDims,
} from '../../shared/fff/weights.ts';

/** Why `delta` is not of the shard's exact shape, or undefined. */
export function shapeMismatch(delta: FFFWeights, expected: FFFShape): string | undefined {
  if (!sameShape(delta.shape, expected))
    return `shape ${JSON.stringify(delta.shape)} does not match the shard ${JSON.stringify(expected)}`;
  const dims = tensorDims(expected);
  for (const name of TENSOR_NAMES) {
    const count = elementCount(dims[name]);
    if (delta.tensors[name].length !== count)
      return `${name} has ${delta.tensors[name].length} values, expected ${count}`;
  }
  return undefined;
}

/** The first value that is NaN or infinite, named by tensor and index, or undefined. */
export function nonFiniteValue(delta: FFFWeights): string | undefined {
  for (const name of TENSOR_NAMES) {
    const values = delta.tensors[name];
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (!Number.isFinite(v)) return `${name}[${i}] is not finite (${v})`;
    }
  }
  return undefined;
}

/** The global L2 norm over every tensor. */
export function deltaNorm(delta: FFFWeights): number {
  let squares = 0;
  for (const name of TENSOR_NAMES) for (const v of delta.tensors[name]) squares += v * v;
  return Math.sqrt(squares);
}

const LEAF_TENSORS = ['leaves.w1', 'leaves.b1', 'leaves.w2', 'leaves.b2'] as const;

/**
 * The share of leaf parameters a delta changes. Training changes nearly all of them (Adam
 * moves every parameter with a gradient; one hard-routed minibatch still reaches 32 leaves);
 * a zero delta with a few bytes flipped changes a handful.
 */
export function changedLeafShare(delta: FFFWeights): number {
  let changed = 0;
  let total = 0;
  for (const name of LEAF_TENSORS) {
    const values = delta.tensors[name];
    total += values.length;
    for (const v of values) if (v !== 0) changed++;
  }
  return total === 0 ? 0 : changed / total;
}

/** ‖a − b‖ / max(‖a‖, ‖b‖): 0 for equal deltas, about 1.4 for unrelated ones of one size. */
export function relativeDistance(a: FFFWeights, b: FFFWeights): number {
  let diff = 0;
  for (const name of TENSOR_NAMES) {
    const x = a.tensors[name];
    const y = b.tensors[name];
    for (let i = 0; i < x.length; i++) diff += (x[i]! - y[i]!) ** 2;
  }
  const scale = Math.max(deltaNorm(a), deltaNorm(b));
  return scale === 0 ? 0 : Math.sqrt(diff) / scale;
}
