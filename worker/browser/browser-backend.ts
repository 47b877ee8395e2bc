import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { BROWSER_BACKENDS, type BrowserBackend } from './thread-messages.ts';
import { type NumericsCheck, numericsFailure, probeNumerics } from '../../shared/fff/numerics-probe.ts';

export interface BrowserBackendChoice {
  readonly name: BrowserBackend;
  readonly gpu: boolean;
  readonly numerics: NumericsCheck;
  /** Why the backends before it were not used. */
  readonly skipped: readonly string[];
}

async function unavailable(name: BrowserBackend): Promise<string | undefined> {
  if (name === 'webgpu') {
    const gpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
    if (gpu === undefined) return 'webgpu: this browser has no WebGPU';
    if ((await gpu.requestAdapter()) === null) return 'webgpu: no adapter';
  }
  try {
    if (!(await tf.setBackend(name))) return `${name}: did not start`;
    await tf.ready();
  } catch (error) {
    return `${name}: ${(error as Error).message.split('\n')[0]}`;
  }
  if (name === 'webgl' && !tf.env().getBool('WEBGL_RENDER_FLOAT32_CAPABLE'))
    return 'webgl: renders to float16 textures only';
  return undefined;
}

/**
 * WebGPU, then WebGL, then wasm (from `preferred` on): the first that starts and trains the
 * numerics probe like the CPU reference. What was skipped, and why, is returned for the page.
 */
export async function selectBrowserBackend(
  wasmDirectory: string,
  preferred: BrowserBackend = 'webgpu',
): Promise<BrowserBackendChoice> {
  setWasmPaths(wasmDirectory);
  const skipped: string[] = [];
  for (const name of BROWSER_BACKENDS.slice(BROWSER_BACKENDS.indexOf(preferred))) {
    const reason = await unavailable(name);
    if (reason !== undefined) {
      skipped.push(reason);
      continue;
    }
    const numerics = await probeNumerics(name);
    if (numerics.ok) return { name, gpu: name !== 'wasm', numerics, skipped };
    skipped.push(`${name}: ${numericsFailure(numerics.relativeError)}`);
  }
  throw new Error(`no usable backend in this browser: ${skipped.join('; ')}`);
}
