import * as tf from '@tensorflow/tfjs';
import { numericsFailure, probeNumerics } from './fff/numerics-probe.ts';
import { installNodeWebGpu } from './node-webgpu.ts';

export const BACKEND_CHOICES = ['auto', 'webgpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];
export type BackendName = Exclude<BackendChoice, 'auto'>;

export interface BackendInfo {
  /** tfjs backend name actually in use: 'webgpu', 'tensorflow', 'wasm' or 'cpu'. */
  readonly name: string;
  readonly gpu: boolean;
  readonly threads: number;
  /** Why other, better backends were not used. */
  readonly skipped: readonly string[];
}

export class BackendError extends Error {
  readonly code = 'BACKEND_UNAVAILABLE';
}

async function tryNative(gpu: boolean): Promise<string | undefined> {
  const pkg = gpu ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
  // Set by the volunteer bundle's build: it carries its own TensorFlow.js, which tfjs-node cannot join.
  if (process.env['ARBOR_BUNDLE'] === '1')
    return `${pkg}: native TensorFlow needs 'arbor worker' from a clone (this worker carries its own TensorFlow.js)`;
  try {
    await (gpu ? import('@tensorflow/tfjs-node-gpu') : import('@tensorflow/tfjs-node'));
    return undefined;
  } catch (error) {
    return `${pkg} not loadable (${(error as Error).message.split('\n')[0]})`;
  }
}

async function activate(name: string): Promise<boolean> {
  if (name === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  try {
    return (await tf.setBackend(name)) && tf.getBackend() === name;
  } catch {
    return false;
  }
}

/** The backends to try, best first. `webgpu` and `--gpu` fall back to the CPU ones; other choices do not. */
function candidates(choice: BackendChoice, gpu: boolean): readonly BackendName[] {
  if (choice === 'webgpu') return ['webgpu', 'wasm', 'cpu'];
  if (choice !== 'auto') return [choice];
  return gpu ? ['webgpu', 'tensorflow', 'wasm', 'cpu'] : ['tensorflow', 'wasm', 'cpu'];
}

/** Why `name` cannot be used, or undefined once it is active. */
async function unavailable(name: BackendName, gpu: boolean): Promise<string | undefined> {
  if (name === 'webgpu') {
    const missing = await installNodeWebGpu();
    if (missing !== undefined) return missing;
  }
  if (name === 'tensorflow') {
    const failure = await tryNative(gpu);
    if (failure !== undefined) return failure;
  }
  if (!(await activate(name))) return `${name} backend failed to initialise`;
  await tf.ready();
  if (name === 'webgpu') {
    const numerics = await probeNumerics('webgpu');
    if (!numerics.ok) return `webgpu: ${numericsFailure(numerics.relativeError)}`;
  }
  return undefined;
}

/**
 * Every backend of `choice` that starts here (WebGPU's numerics checked), each left
 * initialised; the last one tried stays active. Why the others cannot be used.
 */
export async function usableBackends(
  choice: BackendChoice,
  gpu: boolean,
): Promise<{ usable: BackendName[]; skipped: string[] }> {
  const usable: BackendName[] = [];
  const skipped: string[] = [];
  for (const name of candidates(choice, gpu)) {
    const reason = await unavailable(name, gpu);
    if (reason === undefined) usable.push(name);
    else skipped.push(reason);
  }
  return { usable, skipped };
}

/**
 * Picks the best available backend: native TensorFlow > wasm > cpu; with `gpu`, WebGPU
 * (Node's Dawn) and then the CUDA build of TensorFlow first. `webgpu` falls back to wasm
 * when no adapter is found; any other explicit choice must succeed or it throws.
 */
export async function selectBackend(choice: BackendChoice = 'auto', gpu = false): Promise<BackendInfo> {
  const skipped: string[] = [];
  for (const name of candidates(choice, gpu)) {
    const reason = await unavailable(name, gpu);
    if (reason === undefined)
      return { name, gpu: name === 'webgpu' || (gpu && name === 'tensorflow'), threads: 1, skipped };
    skipped.push(reason);
  }
  throw new BackendError(`no usable tensor backend for '${choice}': ${skipped.join('; ')}`);
}
