/** Elementwise arithmetic on weights of one shape, host-side (checkpoint layout). */
import { type FFFWeights, TENSOR_NAMES, cloneWeights, zeroWeights } from '../../shared/fff/weights.ts';

/** a + k·b, as new weights. */
export function plusScaled(a: FFFWeights, k: number, b: FFFWeights): FFFWeights {
  const out = cloneWeights(a);
  if (k === 0) return out;
  for (const name of TENSOR_NAMES) {
    const o = out.tensors[name];
    const x = b.tensors[name];
    for (let i = 0; i < o.length; i++) o[i] = o[i]! + k * x[i]!;
  }
  return out;
}

/** k·a, as new weights. */
export const scaled = (k: number, a: FFFWeights): FFFWeights => plusScaled(zeroWeights(a.shape), k, a);
