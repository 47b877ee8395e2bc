/**
 * A shard's outer-optimizer state between merges, kept as one blob: the Nesterov momentum,
 * the deltas received since the last outer step (a round of delayed Nesterov, or FedBuff's
 * buffer) and how much of a round they make. Older jobs kept the momentum alone, as an FFF
 * checkpoint; such a blob decodes as momentum with nothing pending.
 */
import { FFF_CHECKPOINT_FORMAT, decodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import {
  CheckpointError,
  type HostTensor,
  decodeSafetensors,
  encodeSafetensors,
} from '../../shared/checkpoint/safetensors.ts';
import {
  type FFFShape,
  type FFFWeights,
  TENSOR_NAMES,
  tensorDims,
  zeroWeights,
} from '../../shared/fff/weights.ts';

export interface OuterState {
  readonly momentum: FFFWeights;
  /** Deltas received since the last outer step, each already weighted. */
  readonly pending: FFFWeights;
  /** How much of a round the pending deltas make (a round is complete at 1). */
  readonly round: number;
  /** Results the pending deltas came from. */
  readonly arrivals: number;
}

export const OUTER_STATE_FORMAT = 'arbor-outer-1';

export function emptyOuterState(shape: FFFShape): OuterState {
  return { momentum: zeroWeights(shape), pending: zeroWeights(shape), round: 0, arrivals: 0 };
}

export function encodeOuterState(state: OuterState): Uint8Array {
  const dims = tensorDims(state.momentum.shape);
  const tensors: Record<string, HostTensor> = {};
  for (const name of TENSOR_NAMES) {
    tensors[`momentum/${name}`] = { shape: dims[name], data: state.momentum.tensors[name] };
    tensors[`pending/${name}`] = { shape: dims[name], data: state.pending.tensors[name] };
  }
  return encodeSafetensors(tensors, {
    format: OUTER_STATE_FORMAT,
    round: String(state.round),
    arrivals: String(state.arrivals),
  });
}

/** The state in `bytes` for a subtree of `shape`; throws CheckpointError when it does not fit. */
export function decodeOuterState(bytes: Uint8Array, shape: FFFShape, source: string): OuterState {
  const decoded = decodeSafetensors(bytes, source);
  if (decoded.metadata.format === FFF_CHECKPOINT_FORMAT)
    return { ...emptyOuterState(shape), momentum: decodeFFF(bytes, source) };
  if (decoded.metadata.format !== OUTER_STATE_FORMAT)
    throw new CheckpointError(source, `metadata format is ${JSON.stringify(decoded.metadata.format)}`);
  const part = (prefix: string): FFFWeights => {
    const out = zeroWeights(shape);
    for (const name of TENSOR_NAMES) {
      const tensor = decoded.tensors.get(`${prefix}/${name}`);
      if (tensor === undefined || tensor.data.length !== out.tensors[name].length)
        throw new CheckpointError(source, `${prefix}/${name} is missing or of another size`);
      out.tensors[name].set(tensor.data);
    }
    return out;
  };
  const number = (key: string): number => {
    const value = Number(decoded.metadata[key]);
    if (!Number.isFinite(value)) throw new CheckpointError(source, `metadata ${key} is not a number`);
    return value;
  };
  return {
    momentum: part('momentum'),
    pending: part('pending'),
    round: number('round'),
    arrivals: number('arrivals'),
  };
}
