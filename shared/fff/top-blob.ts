/**
 * What travels for a slow top: the top K levels' branch nodes (safetensors, format
 * "arbor-top-1": `nodes.weight` [2^K-1, I], `nodes.bias` [2^K-1] and `right_share`
 * [2^K-1], the share of training samples each node sends right), and a shard's cached
 * sibling outputs (format "arbor-siblings-1": `siblings` [n, K*O]).
 */
import { CheckpointError, decodeSafetensors, encodeSafetensors } from '../checkpoint/safetensors.ts';
import { type PathContext, pathOf } from './path-model.ts';
import type { FFFWeights } from './weights.ts';

export const TOP_BLOB_FORMAT = 'arbor-top-1';
export const SIBLINGS_BLOB_FORMAT = 'arbor-siblings-1';

export interface TopNodes {
  readonly levels: number;
  readonly inputWidth: number;
  readonly weight: Float32Array;
  readonly bias: Float32Array;
  readonly rightShare: Float32Array;
}

/** The top K levels of a tree, every split assumed even until routing counts it. */
export function topOfTree(tree: FFFWeights, levels: number): TopNodes {
  const nodes = 2 ** levels - 1;
  const inputWidth = tree.shape.inputWidth;
  return {
    levels,
    inputWidth,
    weight: tree.tensors['nodes.weight'].slice(0, nodes * inputWidth),
    bias: tree.tensors['nodes.bias'].slice(0, nodes),
    rightShare: new Float32Array(nodes).fill(0.5),
  };
}

/** A copy of `tree` whose top K levels are `top`'s. */
export function withTop(tree: FFFWeights, top: TopNodes): FFFWeights {
  const weight = tree.tensors['nodes.weight'].slice();
  const bias = tree.tensors['nodes.bias'].slice();
  weight.set(top.weight);
  bias.set(top.bias);
  return { shape: tree.shape, tensors: { ...tree.tensors, 'nodes.weight': weight, 'nodes.bias': bias } };
}

/** The shard each of `n` samples goes to through the top's hard decisions. */
export function routeThroughTop(top: TopNodes, x: Float32Array, n: number): Int32Array {
  const I = top.inputWidth;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let node = 0;
    for (let k = 0; k < top.levels; k++) {
      let z = top.bias[node]!;
      for (let j = 0, w = node * I, r = i * I; j < I; j++) z += top.weight[w + j]! * x[r + j]!;
      node = 2 * node + (z > 0 ? 2 : 1);
    }
    out[i] = node - (2 ** top.levels - 1);
  }
  return out;
}

export function encodeTop(top: TopNodes): Uint8Array {
  const nodes = 2 ** top.levels - 1;
  return encodeSafetensors(
    {
      'nodes.weight': { shape: [nodes, top.inputWidth], data: top.weight },
      'nodes.bias': { shape: [nodes], data: top.bias },
      right_share: { shape: [nodes], data: top.rightShare },
    },
    { format: TOP_BLOB_FORMAT },
  );
}

export function decodeTop(bytes: Uint8Array, source = 'top blob'): TopNodes {
  const fail = (problem: string): never => {
    throw new CheckpointError(source, problem);
  };
  const { tensors, metadata } = decodeSafetensors(bytes, source);
  if (metadata.format !== TOP_BLOB_FORMAT) fail(`metadata format is ${JSON.stringify(metadata.format)}`);
  const weight = tensors.get('nodes.weight');
  const bias = tensors.get('nodes.bias');
  const share = tensors.get('right_share');
  if (!weight || !bias || !share || tensors.size !== 3)
    fail('expected exactly nodes.weight, nodes.bias and right_share');
  const nodes = bias!.shape[0] ?? 0;
  const levels = Math.log2(nodes + 1);
  if (!Number.isInteger(levels) || levels < 1 || bias!.shape.length !== 1)
    fail(`${nodes} nodes are not a tree`);
  if (weight!.shape.length !== 2 || weight!.shape[0] !== nodes || share!.shape[0] !== nodes)
    fail('nodes.weight, nodes.bias and right_share disagree on the number of nodes');
  for (const t of [weight!, bias!, share!]) if (!t.data.every(Number.isFinite)) fail('a value is not finite');
  return {
    levels,
    inputWidth: weight!.shape[1]!,
    weight: weight!.data,
    bias: bias!.data,
    rightShare: share!.data,
  };
}

/** What a worker on `shard` trains above its subtree. */
export function pathContext(top: TopNodes, shard: number, balance: number): PathContext {
  const { nodes, directions } = pathOf(shard, top.levels);
  const I = top.inputWidth;
  const weight = new Float32Array(top.levels * I);
  nodes.forEach((node, k) => weight.set(top.weight.subarray(node * I, (node + 1) * I), k * I));
  return {
    levels: top.levels,
    directions,
    weight,
    bias: Float32Array.from(nodes.map((node) => top.bias[node]!)),
    onShare: Float32Array.from(
      nodes.map((node, k) => (directions[k] ? top.rightShare[node]! : 1 - top.rightShare[node]!)),
    ),
    balance,
  };
}

export function encodeSiblings(siblings: Float32Array, n: number): Uint8Array {
  return encodeSafetensors(
    { siblings: { shape: [n, n === 0 ? 0 : siblings.length / n], data: siblings } },
    { format: SIBLINGS_BLOB_FORMAT },
  );
}

/** The sibling outputs of `n` samples, `width` each; anything else is refused. */
export function decodeSiblings(
  bytes: Uint8Array,
  n: number,
  width: number,
  source = 'siblings blob',
): Float32Array {
  const { tensors, metadata } = decodeSafetensors(bytes, source);
  const siblings = tensors.get('siblings');
  const problem =
    metadata.format !== SIBLINGS_BLOB_FORMAT
      ? `metadata format is ${JSON.stringify(metadata.format)}`
      : siblings === undefined || tensors.size !== 1
        ? 'expected exactly the tensor siblings'
        : siblings.shape[0] !== n || siblings.shape[1] !== width
          ? `siblings has shape [${siblings.shape.join(', ')}], expected [${n}, ${width}]`
          : !siblings.data.every(Number.isFinite)
            ? 'a value is not finite'
            : undefined;
  if (problem !== undefined) throw new CheckpointError(source, problem);
  return siblings!.data;
}
