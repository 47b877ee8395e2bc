/**
 * FFF weights <-> safetensors. Metadata (all strings): format = "arbor-fff-1", depth,
 * leaf_width, input_width, output_width, activation, plus any extra keys of the caller;
 * checkpoint files also carry data_sha256 (checkpoint-checksum.ts).
 * Tensors are TENSOR_NAMES with exactly the dims of tensorDims(shape), nothing else.
 */
import {
  ACTIVATIONS,
  type Activation,
  type FFFShape,
  type FFFTensors,
  type FFFWeights,
  TENSOR_NAMES,
  tensorDims,
} from '../fff/weights.ts';
import { CheckpointError, decodeSafetensors, encodeSafetensors, type HostTensor } from './safetensors.ts';

export const FFF_CHECKPOINT_FORMAT = 'arbor-fff-1';
/** Set on checkpoint files only, by node code (checkpoint-checksum.ts): this module runs in browsers too. */
export const CHECKSUM_KEY = 'data_sha256';
const RESERVED_KEYS = [
  'format',
  'depth',
  'leaf_width',
  'input_width',
  'output_width',
  'activation',
  CHECKSUM_KEY,
] as const;
/** Depth beyond which 2^D leaves cannot be meant seriously (and sizes overflow). */
const MAX_DEPTH = 24;

export interface FFFCheckpoint {
  readonly weights: FFFWeights;
  /** All metadata of the file, the reserved keys included. */
  readonly metadata: Record<string, string>;
}

export function encodeFFF(
  weights: FFFWeights,
  extraMetadata: Record<string, string> = {},
  extraTensors: Record<string, HostTensor> = {},
): Uint8Array {
  const clash = RESERVED_KEYS.find((key) => key in extraMetadata);
  if (clash) throw new RangeError(`extra checkpoint metadata may not set the reserved key "${clash}"`);
  const { shape } = weights;
  const metadata: Record<string, string> = {
    format: FFF_CHECKPOINT_FORMAT,
    depth: String(shape.depth),
    leaf_width: String(shape.leafWidth),
    input_width: String(shape.inputWidth),
    output_width: String(shape.outputWidth),
    activation: shape.activation,
    ...extraMetadata,
  };
  const dims = tensorDims(shape);
  const tensors: Record<string, HostTensor> = {};
  for (const name of TENSOR_NAMES) tensors[name] = { shape: dims[name], data: weights.tensors[name] };
  return encodeSafetensors({ ...tensors, ...extraTensors }, metadata);
}

function parseShape(metadata: Record<string, string>, fail: (problem: string) => never): FFFShape {
  if (metadata.format !== FFF_CHECKPOINT_FORMAT) {
    fail(`metadata format is ${JSON.stringify(metadata.format)}, expected "${FFF_CHECKPOINT_FORMAT}"`);
  }
  const int = (key: string, min: number, max: number): number => {
    const text = metadata[key];
    const value = Number(text);
    if (text === undefined || !/^\d+$/.test(text) || value < min || value > max) {
      fail(`metadata ${key} is ${JSON.stringify(text)}, expected an integer in [${min}, ${max}]`);
    }
    return value;
  };
  const activation = metadata.activation;
  if (!(ACTIVATIONS as readonly string[]).includes(activation ?? '')) {
    fail(`metadata activation is ${JSON.stringify(activation)}, expected one of ${ACTIVATIONS.join(', ')}`);
  }
  return {
    depth: int('depth', 0, MAX_DEPTH),
    leafWidth: int('leaf_width', 1, 2 ** 20),
    inputWidth: int('input_width', 1, 2 ** 24),
    outputWidth: int('output_width', 1, 2 ** 20),
    activation: activation as Activation,
  };
}

/** Decodes a checkpoint; tensors named in `extraTensors` may be there too and are returned apart. */
export function decodeFFFCheckpoint(
  bytes: Uint8Array,
  source = 'checkpoint',
  extraTensors: readonly string[] = [],
): FFFCheckpoint & { extra: Map<string, HostTensor> } {
  const fail = (problem: string): never => {
    throw new CheckpointError(source, problem);
  };
  const { tensors, metadata } = decodeSafetensors(bytes, source);
  const shape = parseShape(metadata, fail);
  const dims = tensorDims(shape);
  const out: Partial<FFFTensors> = {};
  for (const name of TENSOR_NAMES) {
    const tensor = tensors.get(name);
    if (!tensor) return fail(`tensor ${name} is missing`);
    if (tensor.dtype !== undefined && tensor.dtype !== 'F32')
      fail(`tensor ${name} is ${tensor.dtype}, not F32`);
    const want = dims[name];
    if (tensor.shape.length !== want.length || tensor.shape.some((d, i) => d !== want[i])) {
      fail(
        `tensor ${name} has shape [${tensor.shape.join(', ')}], expected [${want.join(', ')}] for ${describe(shape)}`,
      );
    }
    out[name] = tensor.data;
  }
  const unexpected = [...tensors.keys()].filter(
    (name) => !(TENSOR_NAMES as readonly string[]).includes(name) && !extraTensors.includes(name),
  );
  if (unexpected.length > 0) fail(`unexpected tensors: ${unexpected.join(', ')}`);
  const extra = new Map([...tensors].filter(([name]) => extraTensors.includes(name)));
  return { weights: { shape, tensors: out as FFFTensors }, metadata, extra };
}

const describe = (s: FFFShape): string =>
  `depth ${s.depth}, leaf width ${s.leafWidth}, input ${s.inputWidth}, output ${s.outputWidth}`;

export function decodeFFF(bytes: Uint8Array, source?: string): FFFWeights {
  return decodeFFFCheckpoint(bytes, source).weights;
}
