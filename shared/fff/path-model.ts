/**
 * The path above a shard (the "slow top"): the K branch nodes from the root down to the
 * shard's subtree, trained by the shard's worker together with its subtree.
 *
 * For a sample of shard s the full tree's soft output decomposes along the path:
 *   y = sum_k (prod_{j<k} q_j) (1 - q_k) S_k  +  (prod_k q_k) T
 * where q_k is the probability of taking the path's direction at level k, S_k the soft
 * output of the subtree the path leaves behind at level k (its sibling) and T the shard's
 * own subtree. The coordinator caches every sample's S_k; while they are current, the
 * gradients of the path nodes and of the subtree equal the full tree's exactly.
 */
import * as tf from '@tensorflow/tfjs';
import { projectData } from './soft-model.ts';

export interface PathNodes {
  /** Rows of the K path nodes' weights [K, I], root first. */
  readonly weight: Float32Array;
  readonly bias: Float32Array;
}

export interface PathContext extends PathNodes {
  readonly levels: number;
  /** 1 where the path goes right at that level. */
  readonly directions: readonly number[];
  /**
   * Share of the job's training samples that take the path's side at each level, among
   * those that reach the node: the balance term pulls it toward one half.
   */
  readonly onShare: Float32Array;
  /** Weight of the path nodes' balance term. */
  readonly balance: number;
}

/** Global indices of the K path nodes of `shard`, root first, and the directions taken. */
export function pathOf(shard: number, levels: number): { nodes: number[]; directions: number[] } {
  const nodes: number[] = [];
  const directions: number[] = [];
  let node = 0;
  for (let k = 0; k < levels; k++) {
    const right = (shard >> (levels - 1 - k)) & 1;
    nodes.push(node);
    directions.push(right);
    node = 2 * node + 1 + right;
  }
  return { nodes, directions };
}

/** The level-(k+1) index of the subtree the path of `shard` leaves behind at level k. */
export const siblingAt = (shard: number, levels: number, k: number): number =>
  (shard >> (levels - 1 - k)) ^ 1;

/** The path nodes as tfjs variables, with the fixed parts of the path. */
export class TrainablePath {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;

  constructor(readonly context: PathContext) {
    const inputWidth = context.weight.length / context.levels;
    this.weight = tf.variable(tf.tensor2d(context.weight, [context.levels, inputWidth]), true);
    this.bias = tf.variable(tf.tensor1d(context.bias), true);
  }

  async readNodes(): Promise<PathNodes> {
    const [weight, bias] = await Promise.all([this.weight.data(), this.bias.data()]);
    return {
      weight: Float32Array.from(weight as Float32Array),
      bias: Float32Array.from(bias as Float32Array),
    };
  }

  dispose(): void {
    this.weight.dispose();
    this.bias.dispose();
  }
}

/** The value of `t` as a constant: no gradient flows back through it. */
const constant = tf.customGrad((...args) => {
  const [t] = args as [tf.Tensor];
  return { value: tf.clone(t), gradFunc: (dy) => [tf.zerosLike(dy as tf.Tensor)] };
}) as (t: tf.Tensor) => tf.Tensor;

export interface PathForward {
  readonly logits: tf.Tensor2D;
  /** The path nodes' logits [B, K]. */
  readonly pathLogits: tf.Tensor2D;
  /** The balance term of the path nodes (a scalar). */
  readonly balance: tf.Scalar;
}

/**
 * The full tree's soft output for a batch of the shard from its own subtree's output
 * `subtree` [B, O] and the cached sibling outputs `siblings` [B, K*O].
 */
export function pathForward(
  path: TrainablePath,
  x: tf.Tensor2D,
  subtree: tf.Tensor2D,
  siblings: tf.Tensor2D,
): PathForward {
  const { levels, directions, onShare } = path.context;
  const batch = x.shape[0];
  const outputs = subtree.shape[1];
  const pathLogits = tf.add(
    projectData(x, tf.transpose(path.weight as tf.Tensor2D)),
    path.bias,
  ) as tf.Tensor2D;
  let reach: tf.Tensor = tf.ones([batch, 1]);
  let logits: tf.Tensor = tf.zerosLike(subtree);
  let balance: tf.Tensor = tf.scalar(0);
  for (let k = 0; k < levels; k++) {
    const z = tf.slice(pathLogits, [0, k], [batch, 1]);
    const on = tf.sigmoid(directions[k] === 1 ? z : tf.neg(z));
    const off = tf.sub(1, on);
    const sibling = tf.slice(siblings, [0, k * outputs], [batch, outputs]);
    logits = tf.add(logits, tf.mul(tf.mul(reach, off), sibling));
    const share = Math.min(1 - 1e-3, Math.max(1e-3, onShare[k]!));
    // d KL(share || 1/2) = log(share / (1 - share)) d share; this shard's samples move it.
    balance = tf.add(balance, tf.mul(Math.log(share / (1 - share)), tf.mean(tf.mul(constant(reach), on))));
    reach = tf.mul(reach, on);
  }
  logits = tf.add(logits, tf.mul(reach, subtree));
  return { logits: logits as tf.Tensor2D, pathLogits, balance: balance as tf.Scalar };
}
