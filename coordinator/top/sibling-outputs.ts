import * as tf from '@tensorflow/tfjs';
import { siblingAt } from '../../shared/fff/path-model.ts';
import { TrainableFFF, forward } from '../../shared/fff/soft-model.ts';
import { extractSubtree } from '../../shared/fff/subtree.ts';
import type { FFFWeights } from '../../shared/fff/weights.ts';

const CHUNK = 2048;

/**
 * Each sample's soft output of the K subtrees the path of `shard` leaves behind, level by
 * level [n, K * outputWidth]: what a worker needs to train the path nodes exactly.
 */
export function siblingOutputs(
  tree: FFFWeights,
  levels: number,
  shard: number,
  x: Float32Array,
  n: number,
): Float32Array {
  const { inputWidth, outputWidth } = tree.shape;
  const width = levels * outputWidth;
  const out = new Float32Array(n * width);
  for (let k = 0; k < levels; k++) {
    const model = new TrainableFFF(extractSubtree(tree, k + 1, siblingAt(shard, levels, k)));
    try {
      for (let start = 0; start < n; start += CHUNK) {
        const rows = Math.min(CHUNK, n - start);
        const logits = tf.tidy(() => {
          const batch = tf.tensor2d(x.subarray(start * inputWidth, (start + rows) * inputWidth), [
            rows,
            inputWidth,
          ]);
          return forward(model, batch, { routing: 'soft' }).logits.dataSync();
        });
        for (let r = 0; r < rows; r++) {
          out.set(
            logits.subarray(r * outputWidth, (r + 1) * outputWidth),
            (start + r) * width + k * outputWidth,
          );
        }
      }
    } finally {
      model.dispose();
    }
  }
  return out;
}
