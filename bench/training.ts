import * as tf from '@tensorflow/tfjs';
import { createRng } from '../shared/random.ts';
import { initWeights } from '../shared/fff/init.ts';
import { TrainableFFF, crossEntropy, decisionEntropy, forward } from '../shared/fff/soft-model.ts';

export interface TrainingBenchResult {
  readonly depth: number;
  readonly leaf: number;
  readonly batch: number;
  readonly backend: string;
  readonly fff_samples_per_s: number;
  /** A dense 784-(2^D·L)-10 MLP trained the same way in the same process. */
  readonly ff_samples_per_s: number;
  readonly ratio_to_dense: number;
}

/** GPU backends queue their work: reading a trained value back waits for all of it. */
async function samplesPerSecond(
  step: () => void,
  settled: () => Promise<unknown>,
  batch: number,
  steps: number,
): Promise<number> {
  for (let i = 0; i < 5; i++) step();
  await settled();
  const started = performance.now();
  for (let i = 0; i < steps; i++) step();
  await settled();
  return (batch * steps) / ((performance.now() - started) / 1000);
}

/** Soft training steps per second (with hardening) on the active backend, against a dense twin. */
export async function benchTraining(opts: {
  depth: number;
  leaf: number;
  batch: number;
  steps?: number;
}): Promise<TrainingBenchResult> {
  const steps = opts.steps ?? 60;
  const inputWidth = 784;
  const rng = createRng(7);
  const x = tf.tensor2d(
    Float32Array.from({ length: opts.batch * inputWidth }, () => rng()),
    [opts.batch, inputWidth],
  );
  const y = tf.tensor1d(
    Int32Array.from({ length: opts.batch }, (_, i) => i % 10),
    'int32',
  );
  const shape = {
    depth: opts.depth,
    leafWidth: opts.leaf,
    inputWidth,
    outputWidth: 10,
    activation: 'relu' as const,
  };
  const model = new TrainableFFF(initWeights(shape, 1));
  const fffOptimizer = tf.train.adam(1e-3);
  const fffVars = Object.values(model.vars);
  const fff = await samplesPerSecond(
    () =>
      tf.tidy(() => {
        fffOptimizer.minimize(
          () => {
            const out = forward(model, x, { routing: 'soft' });
            return tf.add(
              crossEntropy(out.logits, y),
              tf.mul(3, decisionEntropy(out.nodeLogits)),
            ) as tf.Scalar;
          },
          false,
          fffVars,
        );
      }),
    () => fffVars[0]!.data(),
    opts.batch,
    steps,
  );
  const width = 2 ** opts.depth * opts.leaf;
  const dense = [
    tf.variable(tf.randomUniform([inputWidth, width], -0.03, 0.03)),
    tf.variable(tf.zeros([width])),
    tf.variable(tf.randomUniform([width, 10], -0.1, 0.1)),
    tf.variable(tf.zeros([10])),
  ] as const;
  const denseOptimizer = tf.train.adam(1e-3);
  const ff = await samplesPerSecond(
    () =>
      tf.tidy(() => {
        denseOptimizer.minimize(
          () => {
            const hidden = tf.relu(tf.add(tf.matMul(x, dense[0]), dense[1]));
            return crossEntropy(tf.add(tf.matMul(hidden, dense[2]), dense[3]) as tf.Tensor2D, y);
          },
          false,
          [...dense],
        );
      }),
    () => dense[0].data(),
    opts.batch,
    steps,
  );
  model.dispose();
  for (const v of dense) v.dispose();
  tf.dispose([x, y]);
  fffOptimizer.dispose();
  denseOptimizer.dispose();
  return {
    depth: opts.depth,
    leaf: opts.leaf,
    batch: opts.batch,
    backend: tf.getBackend(),
    fff_samples_per_s: Math.round(fff),
    ff_samples_per_s: Math.round(ff),
    ratio_to_dense: fff / ff,
  };
}
