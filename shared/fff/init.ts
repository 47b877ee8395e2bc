import { createRng, uniformFill } from '../random.ts';
import { type FFFShape, type FFFWeights, zeroWeights } from './weights.ts';

/** The reference initialisation: U(±1/√I) for nodes, W1 and b1; U(±1/√L) for W2 and b2. */
export function initWeights(shape: FFFShape, seed: number): FFFWeights {
  const weights = zeroWeights(shape);
  const rng = createRng(seed);
  const inputBound = 1 / Math.sqrt(shape.inputWidth);
  const leafBound = 1 / Math.sqrt(shape.leafWidth);
  const t = weights.tensors;
  uniformFill(t['nodes.weight'], inputBound, rng);
  uniformFill(t['nodes.bias'], inputBound, rng);
  uniformFill(t['leaves.w1'], inputBound, rng);
  uniformFill(t['leaves.b1'], inputBound, rng);
  uniformFill(t['leaves.w2'], leafBound, rng);
  uniformFill(t['leaves.b2'], leafBound, rng);
  return weights;
}
