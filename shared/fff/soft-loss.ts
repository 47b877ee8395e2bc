import * as tf from '@tensorflow/tfjs';
import type { Dataset } from '../data/dataset.ts';
import { TrainableFFF, crossEntropy, decisionEntropy, forward } from './soft-model.ts';
import type { FFFWeights } from './weights.ts';

/**
 * What a soft training phase minimises, on `data`: the mean cross-entropy of the soft
 * mixture of leaves plus `hardening` times the mean decision entropy. The served (hard)
 * model's loss swings widely while routing is still soft; this does not.
 */
export function softObjective(weights: FFFWeights, data: Dataset, hardening: number): number {
  if (data.n === 0) return 0;
  const model = new TrainableFFF(weights);
  try {
    return tf.tidy(() => {
      const x = tf.tensor2d(data.x, [data.n, data.inputWidth]);
      const y = tf.tensor1d(data.y, 'int32');
      const out = forward(model, x, { routing: 'soft' });
      let loss = crossEntropy(out.logits, y);
      if (hardening > 0) loss = tf.add(loss, tf.mul(hardening, decisionEntropy(out.nodeLogits)));
      return loss.dataSync()[0]!;
    });
  } finally {
    model.dispose();
  }
}
