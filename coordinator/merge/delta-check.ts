import {
  type FFFShape,
  type FFFWeights,
  TENSOR_NAMES,
  elementCount,
  sameShape,
  tensorDims,
} from '../../shared/fff/weights.ts';

export type DeltaVerdict =
  { readonly ok: true; readonly norm: number } | { readonly ok: false; readonly reason: string };

/**
 * Structural checks on a worker's delta before it may touch the model: the shard's exact
 * shape, every value finite, and the global L2 norm within `maxNorm`.
 */
export function checkDelta(delta: FFFWeights, expected: FFFShape, maxNorm: number): DeltaVerdict {
  if (!sameShape(delta.shape, expected)) {
    return {
      ok: false,
      reason: `shape ${JSON.stringify(delta.shape)} does not match the shard ${JSON.stringify(expected)}`,
    };
  }
  const dims = tensorDims(expected);
  let squares = 0;
  for (const name of TENSOR_NAMES) {
    const values = delta.tensors[name];
    if (values.length !== elementCount(dims[name])) {
      return {
        ok: false,
        reason: `${name} has ${values.length} values, expected ${elementCount(dims[name])}`,
      };
    }
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (!Number.isFinite(v)) return { ok: false, reason: `${name}[${i}] is not finite (${v})` };
      squares += v * v;
    }
  }
  const norm = Math.sqrt(squares);
  if (norm > maxNorm)
    return { ok: false, reason: `norm ${norm.toPrecision(4)} exceeds the bound ${maxNorm}` };
  return { ok: true, norm };
}
