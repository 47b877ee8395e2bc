/**
 * Host-side FFF weights: plain Float32Arrays in the checkpoint layout, so that
 * checkpoints, deltas, merging, subtree split and hard inference need no tensor backend.
 *
 * Layout (row-major):
 *   nodes.weight [2^D-1, I]   nodes.bias [2^D-1]
 *   leaves.w1 [2^D, I, L]     leaves.b1 [2^D, L]
 *   leaves.w2 [2^D, L, O]     leaves.b2 [2^D, O]
 * Node n has children 2n+1 (left, weight 1-c_n) and 2n+2 (right, weight c_n).
 */
export const ACTIVATIONS = ['relu', 'tanh'] as const;
export type Activation = (typeof ACTIVATIONS)[number];

export interface FFFShape {
  readonly depth: number;
  readonly leafWidth: number;
  readonly inputWidth: number;
  readonly outputWidth: number;
  readonly activation: Activation;
}

export const TENSOR_NAMES = [
  'nodes.weight',
  'nodes.bias',
  'leaves.w1',
  'leaves.b1',
  'leaves.w2',
  'leaves.b2',
] as const;
export type TensorName = (typeof TENSOR_NAMES)[number];

export type FFFTensors = Record<TensorName, Float32Array>;

export interface FFFWeights {
  readonly shape: FFFShape;
  readonly tensors: FFFTensors;
}

export const nodeCount = (depth: number): number => 2 ** depth - 1;
export const leafCount = (depth: number): number => 2 ** depth;

export function tensorDims(shape: FFFShape): Record<TensorName, number[]> {
  const n = nodeCount(shape.depth);
  const l = leafCount(shape.depth);
  const { inputWidth: i, leafWidth: w, outputWidth: o } = shape;
  return {
    'nodes.weight': [n, i],
    'nodes.bias': [n],
    'leaves.w1': [l, i, w],
    'leaves.b1': [l, w],
    'leaves.w2': [l, w, o],
    'leaves.b2': [l, o],
  };
}

export const elementCount = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

export function parameterCount(shape: FFFShape): number {
  const dims = tensorDims(shape);
  return TENSOR_NAMES.reduce((sum, name) => sum + elementCount(dims[name]), 0);
}

export function zeroWeights(shape: FFFShape): FFFWeights {
  const dims = tensorDims(shape);
  const tensors = Object.fromEntries(
    TENSOR_NAMES.map((name) => [name, new Float32Array(elementCount(dims[name]))]),
  ) as FFFTensors;
  return { shape, tensors };
}

export function cloneWeights(weights: FFFWeights): FFFWeights {
  const tensors = Object.fromEntries(
    TENSOR_NAMES.map((name) => [name, weights.tensors[name].slice()]),
  ) as FFFTensors;
  return { shape: { ...weights.shape }, tensors };
}

export function sameShape(a: FFFShape, b: FFFShape): boolean {
  return (
    a.depth === b.depth &&
    a.leafWidth === b.leafWidth &&
    a.inputWidth === b.inputWidth &&
    a.outputWidth === b.outputWidth &&
    a.activation === b.activation
  );
}
