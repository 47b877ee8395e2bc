import * as tf from '@tensorflow/tfjs';
import { type Routing, type TrainableFFF, forward } from './soft-model.ts';
import type { TrainingSet } from './trainer.ts';

/** Accuracy of the tensor-backend forward pass (soft mixture or one-hot hard routing). */
export function tensorAccuracy(
  model: TrainableFFF,
  data: TrainingSet,
  routing: Routing,
  batchSize = 1024,
): number {
  let correct = 0;
  for (let begin = 0; begin < data.n; begin += batchSize) {
    const size = Math.min(batchSize, data.n - begin);
    const predicted = tf.tidy(() => {
      const x = tf.tensor2d(data.x.subarray(begin * data.inputWidth, (begin + size) * data.inputWidth), [
        size,
        data.inputWidth,
      ]);
      return tf.argMax(forward(model, x, { routing }).logits, 1);
    });
    const classes = predicted.dataSync();
    predicted.dispose();
    for (let i = 0; i < size; i++) if (classes[i] === data.y[begin + i]) correct++;
  }
  return correct / Math.max(data.n, 1);
}
