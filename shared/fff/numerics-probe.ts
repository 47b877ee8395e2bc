/**
 * Whether a tensor backend trains like the reference one: the same small unit (weights,
 * data, seed) is trained on both and the deltas compared. A backend that computes in
 * float16 (WebGL on some devices) or miscompiles a kernel fails here, before any of its
 * results could reach a coordinator.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng, uniformFill } from '../random.ts';
import { initWeights } from './init.ts';
import { trainUnit } from './local-training.ts';
import type { TrainingSet } from './trainer.ts';
import { type FFFWeights, TENSOR_NAMES } from './weights.ts';

/** Relative L2 distance between a backend's probe delta and the reference's. */
export const NUMERICS_TOLERANCE = 1e-3;

export interface NumericsCheck {
  readonly backend: string;
  readonly reference: string;
  readonly relativeError: number;
  readonly ok: boolean;
}

/** ||a − b|| / ||b|| over every tensor of two deltas of one shape. */
export function deltaDistance(a: FFFWeights, b: FFFWeights): number {
  let diff = 0;
  let norm = 0;
  for (const name of TENSOR_NAMES) {
    const x = a.tensors[name];
    const y = b.tensors[name];
    for (let i = 0; i < y.length; i++) {
      diff += (x[i]! - y[i]!) ** 2;
      norm += y[i]! ** 2;
    }
  }
  return Math.sqrt(diff) / Math.max(Math.sqrt(norm), 1e-30);
}

/** One line on a failed probe, for the volunteer's log. */
export function numericsFailure(relativeError: number): string {
  return Number.isFinite(relativeError)
    ? `trains ${relativeError.toExponential(1)} away from the CPU reference (limit ${NUMERICS_TOLERANCE})`
    : 'trains to non-finite values where the CPU reference does not';
}

function probeUnit(): { base: FFFWeights; data: TrainingSet } {
  const inputWidth = 64;
  const n = 256;
  const x = new Float32Array(n * inputWidth);
  uniformFill(x, 1, createRng(11));
  const y = Int32Array.from({ length: n }, (_, i) => (i * 7) % 10);
  const base = initWeights({ depth: 3, leafWidth: 8, inputWidth, outputWidth: 10, activation: 'relu' }, 11);
  return { base, data: { n, inputWidth, x, y } };
}

async function probeDelta(backend: string): Promise<FFFWeights> {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not start`);
  await tf.ready();
  const { base, data } = probeUnit();
  const recipe = {
    epochs: 1,
    batchSize: 64,
    lr: 1e-2,
    optimizer: 'adam',
    hardening: 1,
    leak: 0,
    seed: 11,
  } as const;
  return (await trainUnit(base, data, recipe)).delta;
}

/** Trains the probe on `reference` and on `backend`, and leaves `backend` active. */
export async function probeNumerics(
  backend: string,
  reference = 'cpu',
  tolerance = NUMERICS_TOLERANCE,
): Promise<NumericsCheck> {
  const expected = await probeDelta(reference);
  const got = await probeDelta(backend);
  const relativeError = deltaDistance(got, expected);
  return { backend, reference, relativeError, ok: relativeError <= tolerance };
}
