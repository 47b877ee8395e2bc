import type { Dataset } from '../data/dataset.ts';
import { compileHardInference } from './hard-inference.ts';
import type { FFFWeights } from './weights.ts';

/** Mean cross-entropy of the served (hard-routed) model on `data`; 0 for no samples. */
export function hardCrossEntropy(weights: FFFWeights, data: Dataset): number {
  if (data.n === 0) return 0;
  const logits = compileHardInference(weights).predictLogits(data.x, data.n);
  const classes = weights.shape.outputWidth;
  let total = 0;
  for (let i = 0; i < data.n; i++) {
    const row = i * classes;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[row + c]!);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(logits[row + c]! - max);
    total += Math.log(sum) + max - logits[row + data.y[i]!]!;
  }
  return total / data.n;
}
