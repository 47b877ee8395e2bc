import * as tf from '@tensorflow/tfjs';
import {
  type FFFShape,
  type FFFWeights,
  type TensorName,
  TENSOR_NAMES,
  leafCount,
  tensorDims,
} from './weights.ts';

/** The FFF's parameters as tfjs variables, in the checkpoint layout. */
export class TrainableFFF {
  readonly shape: FFFShape;
  readonly vars: Record<TensorName, tf.Variable>;

  constructor(weights: FFFWeights) {
    this.shape = weights.shape;
    const dims = tensorDims(weights.shape);
    this.vars = Object.fromEntries(
      TENSOR_NAMES.map((name) => [
        name,
        tf.tidy(() => tf.variable(tf.tensor(weights.tensors[name], dims[name]), true)),
      ]),
    ) as Record<TensorName, tf.Variable>;
  }

  toWeights(): FFFWeights {
    const tensors = Object.fromEntries(
      TENSOR_NAMES.map((name) => [name, this.vars[name].dataSync().slice() as Float32Array]),
    ) as FFFWeights['tensors'];
    return { shape: { ...this.shape }, tensors };
  }

  /** As toWeights, read asynchronously: WebGPU cannot read its buffers back synchronously. */
  async readWeights(): Promise<FFFWeights> {
    const values = await Promise.all(TENSOR_NAMES.map((name) => this.vars[name].data()));
    const tensors = Object.fromEntries(
      TENSOR_NAMES.map((name, i) => [name, Float32Array.from(values[i] as Float32Array)]),
    ) as FFFWeights['tensors'];
    return { shape: { ...this.shape }, tensors };
  }

  dispose(): void {
    for (const name of TENSOR_NAMES) this.vars[name].dispose();
  }
}

export type Routing = 'soft' | 'hard';

export interface ForwardOptions {
  readonly routing: Routing;
  /** Probability of transposing the children of a node for a sample (region leak), training only. */
  readonly leak?: number;
  readonly leakSeed?: number;
  /** Also return the batch-mean routing distribution after this many levels. */
  readonly balanceLevels?: number;
}

export interface ForwardResult {
  readonly logits: tf.Tensor2D;
  /** Pre-sigmoid node logits [B, 2^D-1]. */
  readonly nodeLogits: tf.Tensor2D;
  /** Batch-mean probability of reaching each node at depth `balanceLevels` [2^K]. */
  readonly levelMass?: tf.Tensor1D;
}

/**
 * Mixture weight of every leaf [B, 2^D]: the product of branch probabilities along its path.
 * Level by level, each node's weight splits into (1-c) for the left and c for the right child.
 */
function leafMixture(
  probs: tf.Tensor2D,
  depth: number,
  massLevel: number | undefined,
): { mixture: tf.Tensor2D; levelMass?: tf.Tensor1D } {
  const batch = probs.shape[0];
  let weights: tf.Tensor2D = tf.ones([batch, 1]);
  let levelMass: tf.Tensor1D | undefined;
  for (let level = 0; level < depth; level++) {
    if (massLevel === level) levelMass = tf.mean(weights, 0) as tf.Tensor1D;
    const width = 2 ** level;
    const c = tf.slice(probs, [0, width - 1], [batch, width]);
    const left = tf.mul(weights, tf.sub(1, c));
    const right = tf.mul(weights, c);
    weights = tf.reshape(tf.stack([left, right], 2), [batch, width * 2]);
  }
  if (massLevel === depth) levelMass = tf.mean(weights, 0) as tf.Tensor1D;
  return levelMass === undefined ? { mixture: weights } : { mixture: weights, levelMass };
}

function applyLeak(probs: tf.Tensor2D, leak: number, seed: number): tf.Tensor2D {
  const flip = tf.cast(tf.less(tf.randomUniform(probs.shape, 0, 1, 'float32', seed), leak), 'float32');
  return tf.add(probs, tf.mul(flip, tf.sub(1, tf.mul(probs, 2))));
}

function activate(x: tf.Tensor, activation: FFFShape['activation']): tf.Tensor {
  return activation === 'relu' ? tf.relu(x) : tf.tanh(x);
}

/**
 * Forward pass over all leaves. Soft routing mixes leaves by path probability (training);
 * hard routing mixes by a one-hot of the hard path (identical to serving).
 */
export function forward(model: TrainableFFF, x: tf.Tensor2D, options: ForwardOptions): ForwardResult {
  const { depth, leafWidth, inputWidth, outputWidth, activation } = model.shape;
  const v = model.vars;
  const batch = x.shape[0];
  const leaves = leafCount(depth);
  const nodeLogits = tf.add(
    projectData(x, tf.transpose(v['nodes.weight'] as tf.Tensor2D)),
    v['nodes.bias'],
  ) as tf.Tensor2D;

  let mixture: tf.Tensor2D;
  let levelMass: tf.Tensor1D | undefined;
  if (options.routing === 'hard') {
    // 0/1 decisions make the product of branch weights a one-hot of the hard path.
    mixture = leafMixture(
      tf.cast(tf.greater(nodeLogits, 0), 'float32') as tf.Tensor2D,
      depth,
      undefined,
    ).mixture;
  } else {
    let probs = tf.sigmoid(nodeLogits);
    if (options.leak !== undefined && options.leak > 0) {
      probs = applyLeak(probs, options.leak, options.leakSeed ?? 0);
    }
    ({ mixture, levelMass } = leafMixture(probs, depth, options.balanceLevels));
  }

  const w1 = tf.reshape(tf.transpose(v['leaves.w1'], [1, 0, 2]), [inputWidth, leaves * leafWidth]);
  const b1 = tf.reshape(v['leaves.b1'], [leaves * leafWidth]);
  const hidden = activate(tf.add(projectData(x, w1 as tf.Tensor2D), b1), activation);
  const weighted = tf.mul(tf.reshape(hidden, [batch, leaves, leafWidth]), tf.expandDims(mixture, 2));
  const w2 = tf.reshape(v['leaves.w2'], [leaves * leafWidth, outputWidth]);
  const logits = tf.add(
    tf.matMul(tf.reshape(weighted, [batch, leaves * leafWidth]), w2),
    tf.matMul(mixture, v['leaves.b2']),
  ) as tf.Tensor2D;
  return levelMass === undefined ? { logits, nodeLogits } : { logits, nodeLogits, levelMass };
}

/**
 * x @ W for a data input x: the gradient flows to W only. tfjs would otherwise also
 * compute dL/dx (a large transposed matmul per step) that training never uses.
 */
export const projectData = tf.customGrad((...args) => {
  const [x, w, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([x]);
  return {
    value: tf.matMul(x, w),
    gradFunc: (dy, saved) => {
      const [input] = saved as [tf.Tensor2D];
      return [tf.zerosLike(input), tf.matMul(tf.transpose(input), dy as tf.Tensor2D)];
    },
  };
}) as (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D;

/** Mean binary entropy of the node decisions, computed stably from logits. */
export function decisionEntropy(nodeLogits: tf.Tensor2D): tf.Scalar {
  const c = tf.sigmoid(nodeLogits);
  const entropy = tf.add(
    tf.mul(c, tf.softplus(tf.neg(nodeLogits))),
    tf.mul(tf.sub(1, c), tf.softplus(nodeLogits)),
  );
  return tf.mean(entropy);
}

/** KL divergence of the batch-mean routing distribution from uniform. */
export function balanceLoss(levelMass: tf.Tensor1D): tf.Scalar {
  const k = levelMass.shape[0];
  const p = tf.clipByValue(levelMass, 1e-8, 1);
  return tf.add(tf.sum(tf.mul(p, tf.log(p))), Math.log(k));
}

export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const oneHot = tf.oneHot(labels, logits.shape[1]);
  const logProbs = tf.logSoftmax(logits);
  return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, logProbs), 1))) as tf.Scalar;
}
