import * as tf from '@tensorflow/tfjs';

export const BACKEND_CHOICES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export interface BackendInfo {
  /** tfjs backend name actually in use: 'tensorflow', 'wasm' or 'cpu'. */
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
  try {
    await import(pkg);
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

/**
 * Picks the best available backend: native TensorFlow (GPU build when `gpu`) > wasm > cpu.
 * An explicit choice other than 'auto' must succeed or it throws.
 */
export async function selectBackend(choice: BackendChoice = 'auto', gpu = false): Promise<BackendInfo> {
  const skipped: string[] = [];
  const order = choice === 'auto' ? (['tensorflow', 'wasm', 'cpu'] as const) : [choice];
  for (const name of order) {
    if (name === 'tensorflow') {
      const failure = await tryNative(gpu);
      if (failure !== undefined) {
        skipped.push(failure);
        continue;
      }
    }
    if (await activate(name)) {
      await tf.ready();
      return { name, gpu: gpu && name === 'tensorflow', threads: 1, skipped };
    }
    skipped.push(`${name} backend failed to initialise`);
  }
  throw new BackendError(`no usable tensor backend for '${choice}': ${skipped.join('; ')}`);
}
