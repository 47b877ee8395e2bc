import { type FFFWeights, TENSOR_NAMES, cloneWeights } from '../../shared/fff/weights.ts';

/**
 * A delta computed from an older version of its shard, less what the shard has already
 * moved its way since: per tensor, its projection on `moved` (current − base) is removed,
 * as far as it points the same way (at most all of `moved`). Units trained together from
 * one base all descend the same slope at first; summed whole, they overshoot along it.
 * For a fresh delta (`moved` zero) nothing changes.
 */
export function withoutCoveredPart(delta: FFFWeights, moved: FFFWeights): FFFWeights {
  const out = cloneWeights(delta);
  for (const name of TENSOR_NAMES) {
    const d = out.tensors[name];
    const m = moved.tensors[name];
    let dot = 0;
    let norm = 0;
    for (let i = 0; i < d.length; i++) {
      dot += d[i]! * m[i]!;
      norm += m[i]! * m[i]!;
    }
    if (norm === 0 || dot <= 0) continue;
    const k = Math.min(1, dot / norm);
    for (let i = 0; i < d.length; i++) d[i] = d[i]! - k * m[i]!;
  }
  return out;
}
