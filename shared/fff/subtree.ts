/**
 * Subtree split and reassembly for shard training.
 *
 * With the top K levels frozen, shard s (0..2^K-1) owns the subtree rooted at global node
 * 2^K-1+s: an FFF of depth D-K. At level d of the subtree (local index j in 0..2^d-1) the
 * global node is 2^(K+d)-1 + s*2^d + j, and its leaves are the contiguous block of 2^(D-K)
 * global leaves starting at s*2^(D-K).
 */
import {
  type FFFShape,
  type FFFWeights,
  elementCount,
  sameShape,
  tensorDims,
  TENSOR_NAMES,
  zeroWeights,
} from './weights.ts';

function checkSplit(depth: number, frozenLevels: number): void {
  if (!Number.isInteger(depth) || depth < 1)
    throw new RangeError(`cannot split an FFF of depth ${depth}: depth must be a positive integer`);
  if (!Number.isInteger(frozenLevels) || frozenLevels < 0 || frozenLevels >= depth) {
    throw new RangeError(
      `frozenLevels must be an integer in 0..${depth - 1} for depth ${depth} (subtree depth >= 1), got ${frozenLevels}`,
    );
  }
}

function checkShard(frozenLevels: number, shard: number): void {
  const shards = 2 ** frozenLevels;
  if (!Number.isInteger(shard) || shard < 0 || shard >= shards) {
    throw new RangeError(
      `shard must be an integer in 0..${shards - 1} for ${frozenLevels} frozen levels, got ${shard}`,
    );
  }
}

function checkLengths(weights: FFFWeights, what: string): void {
  const dims = tensorDims(weights.shape);
  for (const name of TENSOR_NAMES) {
    const expected = elementCount(dims[name]);
    const actual = weights.tensors[name].length;
    if (actual !== expected)
      throw new RangeError(`${what} ${name} has ${actual} values, expected ${expected}`);
  }
}

/** Shape of the subtree of a depth-D tree with K frozen levels. */
export function subtreeShape(shape: FFFShape, frozenLevels: number): FFFShape {
  checkSplit(shape.depth, frozenLevels);
  return { ...shape, depth: shape.depth - frozenLevels };
}

/**
 * Copies (or writes back, when `toSubtree` is false) the rows shared by the full tree and
 * the subtree of `shard`.
 */
function transfer(
  full: FFFWeights,
  sub: FFFWeights,
  frozenLevels: number,
  shard: number,
  toSubtree: boolean,
): void {
  const { inputWidth: I, leafWidth: L, outputWidth: O } = full.shape;
  const subDepth = full.shape.depth - frozenLevels;
  const move = (
    name: (typeof TENSOR_NAMES)[number],
    globalRow: number,
    localRow: number,
    rowLen: number,
    rows: number,
  ): void => {
    const g = full.tensors[name];
    const s = sub.tensors[name];
    const gStart = globalRow * rowLen;
    const sStart = localRow * rowLen;
    const len = rows * rowLen;
    if (toSubtree) s.set(g.subarray(gStart, gStart + len), sStart);
    else g.set(s.subarray(sStart, sStart + len), gStart);
  };
  // Nodes: each subtree level is a contiguous run of 2^d global nodes.
  for (let d = 0; d < subDepth; d++) {
    const width = 2 ** d;
    const globalStart = 2 ** (frozenLevels + d) - 1 + shard * width;
    const localStart = width - 1;
    move('nodes.weight', globalStart, localStart, I, width);
    move('nodes.bias', globalStart, localStart, 1, width);
  }
  // Leaves: a contiguous block.
  const leaves = 2 ** subDepth;
  const firstLeaf = shard * leaves;
  move('leaves.w1', firstLeaf, 0, I * L, leaves);
  move('leaves.b1', firstLeaf, 0, L, leaves);
  move('leaves.w2', firstLeaf, 0, L * O, leaves);
  move('leaves.b2', firstLeaf, 0, O, leaves);
}

/** The subtree under node 2^K-1+shard as a standalone FFF of depth D-K (copied, not shared). */
export function extractSubtree(weights: FFFWeights, frozenLevels: number, shard: number): FFFWeights {
  checkSplit(weights.shape.depth, frozenLevels);
  checkShard(frozenLevels, shard);
  checkLengths(weights, 'tree');
  const sub = zeroWeights(subtreeShape(weights.shape, frozenLevels));
  transfer(weights, sub, frozenLevels, shard, true);
  return sub;
}

/** Writes `subtree` into its place (shard `shard` under K frozen levels) in `target`, in place. */
export function writeSubtree(
  target: FFFWeights,
  frozenLevels: number,
  shard: number,
  subtree: FFFWeights,
): void {
  checkSplit(target.shape.depth, frozenLevels);
  checkShard(frozenLevels, shard);
  checkLengths(target, 'target');
  const expected = subtreeShape(target.shape, frozenLevels);
  if (!sameShape(expected, subtree.shape)) {
    throw new RangeError(
      `subtree for shard ${shard} has shape ${JSON.stringify(subtree.shape)}, expected ${JSON.stringify(expected)}`,
    );
  }
  checkLengths(subtree, `subtree ${shard}`);
  transfer(target, subtree, frozenLevels, shard, false);
}

/**
 * A full tree whose top K levels come from `top` and whose 2^K subtrees are `subtrees`
 * (in shard order). `top` is not modified.
 */
export function assembleSubtrees(
  top: FFFWeights,
  frozenLevels: number,
  subtrees: readonly FFFWeights[],
): FFFWeights {
  checkSplit(top.shape.depth, frozenLevels);
  checkLengths(top, 'top');
  const shards = 2 ** frozenLevels;
  if (subtrees.length !== shards) {
    throw new RangeError(
      `expected ${shards} subtrees for ${frozenLevels} frozen levels, got ${subtrees.length}`,
    );
  }
  const out = zeroWeights({ ...top.shape });
  const frozenNodes = 2 ** frozenLevels - 1;
  const I = top.shape.inputWidth;
  out.tensors['nodes.weight'].set(top.tensors['nodes.weight'].subarray(0, frozenNodes * I));
  out.tensors['nodes.bias'].set(top.tensors['nodes.bias'].subarray(0, frozenNodes));
  subtrees.forEach((subtree, shard) => writeSubtree(out, frozenLevels, shard, subtree));
  return out;
}
