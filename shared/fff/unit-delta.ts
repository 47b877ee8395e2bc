/**
 * A unit's result: the subtree's delta as an Arbor checkpoint and, when the unit trained
 * the path above its subtree (slow top), the path nodes' delta as two more tensors,
 * `path.weight` [K, I] and `path.bias` [K].
 */
import { decodeFFFCheckpoint, encodeFFF } from '../checkpoint/fff-checkpoint.ts';
import { CheckpointError } from '../checkpoint/safetensors.ts';
import type { PathNodes } from './path-model.ts';
import type { FFFWeights } from './weights.ts';

const PATH_TENSORS = ['path.weight', 'path.bias'] as const;

export interface UnitDelta {
  readonly delta: FFFWeights;
  readonly path?: PathNodes;
}

export function encodeUnitDelta(delta: FFFWeights, path?: PathNodes): Uint8Array {
  if (path === undefined) return encodeFFF(delta);
  const levels = path.bias.length;
  return encodeFFF(
    delta,
    {},
    {
      'path.weight': { shape: [levels, path.weight.length / Math.max(1, levels)], data: path.weight },
      'path.bias': { shape: [levels], data: path.bias },
    },
  );
}

/**
 * The result of a unit; a path delta is allowed only when the unit has `levels` path nodes
 * to train, and must then have their shape.
 */
export function decodeUnitDelta(bytes: Uint8Array, source: string, levels?: number): UnitDelta {
  const allowed = levels === undefined ? [] : PATH_TENSORS;
  const { weights, extra } = decodeFFFCheckpoint(bytes, source, allowed);
  if (extra.size === 0) return { delta: weights };
  const weight = extra.get('path.weight');
  const bias = extra.get('path.bias');
  const I = weights.shape.inputWidth;
  if (weight === undefined || bias === undefined)
    throw new CheckpointError(source, 'a path delta needs both path.weight and path.bias');
  if (weight.shape.join() !== `${levels},${I}` || bias.shape.join() !== `${levels}`)
    throw new CheckpointError(
      source,
      `the path delta has shapes [${weight.shape.join(', ')}] and [${bias.shape.join(', ')}], expected [${levels}, ${I}] and [${levels}]`,
    );
  return { delta: weights, path: { weight: weight.data, bias: bias.data } };
}
