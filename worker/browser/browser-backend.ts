import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { BROWSER_BACKENDS, type BrowserBackend } from './thread-messages.ts';
import { type NumericsCheck, numericsFailure, probeNumerics } from '../../shared/fff/numerics-probe.ts';
import { measureTrainingSpeed } from '../speed-probe.ts';

export interface BrowserBackendChoice {
  readonly name: BrowserBackend;
  readonly gpu: boolean;
  readonly numerics: NumericsCheck;
  /** Training samples per second on the chosen backend. */
  readonly samplesPerSecond: number;
  /** Every backend measured, samples per second. */
  readonly measured: Readonly<Partial<Record<BrowserBackend, number>>>;
  /** Why the other backends were not used. */
  readonly skipped: readonly string[];
}

/** A GPU emulated on the CPU (SwiftShader, llvmpipe): slower than wasm on the same CPU. */
const SOFTWARE_GPU = /swiftshader|llvmpipe|softpipe|software|basic render/i;

interface GpuAdapter {
  readonly info?: {
    vendor?: string;
    architecture?: string;
    description?: string;
    isFallbackAdapter?: boolean;
  };
  readonly isFallbackAdapter?: boolean;
}

async function softwareAdapter(name: BrowserBackend): Promise<string | undefined> {
  if (name === 'webgpu') {
    const gpu = (navigator as { gpu?: { requestAdapter(): Promise<GpuAdapter | null> } }).gpu;
    const adapter = await gpu?.requestAdapter();
    const info = adapter?.info;
    const label = [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(' ');
    if (adapter?.isFallbackAdapter === true || info?.isFallbackAdapter === true || SOFTWARE_GPU.test(label))
      return label || 'a fallback adapter';
  }
  if (name === 'webgl') {
    const gl = new OffscreenCanvas(1, 1).getContext('webgl2');
    const debug = gl?.getExtension('WEBGL_debug_renderer_info');
    const renderer = gl && debug ? String(gl.getParameter(debug.UNMASKED_RENDERER_WEBGL)) : '';
    if (SOFTWARE_GPU.test(renderer)) return renderer;
  }
  return undefined;
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

/** Started, trains like the CPU reference, and how fast (the second run: the first compiles). */
async function calibrate(name: BrowserBackend): Promise<{ numerics: NumericsCheck; speed: number } | string> {
  const reason = await unavailable(name);
  if (reason !== undefined) return reason;
  const numerics = await probeNumerics(name);
  if (!numerics.ok) return `${name}: ${numericsFailure(numerics.relativeError)}`;
  await tf.setBackend(name);
  await measureTrainingSpeed();
  return { numerics, speed: await measureTrainingSpeed() };
}

/**
 * With `preferred` (a lab's `?backend=`): that backend, falling back along WebGPU, WebGL,
 * wasm. Without: every backend that starts and trains like the CPU reference is timed on
 * the same small unit and the fastest wins; a GPU emulated in software is not tried, since
 * it loses to wasm on the same CPU after taking tens of seconds to compile. `onProgress`
 * says what is being measured, for the page.
 */
export async function selectBrowserBackend(
  wasmDirectory: string,
  preferred?: BrowserBackend,
  onProgress: (message: string) => void = () => undefined,
): Promise<BrowserBackendChoice> {
  setWasmPaths(wasmDirectory);
  const skipped: string[] = [];
  const measured: Partial<Record<BrowserBackend, number>> = {};
  let best: { name: BrowserBackend; numerics: NumericsCheck; speed: number } | undefined;
  const order: readonly BrowserBackend[] =
    preferred === undefined
      ? ['wasm', 'webgpu', 'webgl']
      : BROWSER_BACKENDS.slice(BROWSER_BACKENDS.indexOf(preferred));
  for (const name of order) {
    if (preferred === undefined) {
      const software = await softwareAdapter(name);
      if (software !== undefined) {
        skipped.push(`${name}: a GPU emulated on the CPU (${software}), slower than wasm`);
        continue;
      }
    }
    onProgress(`measuring ${name}`);
    const result = await calibrate(name);
    if (typeof result === 'string') {
      skipped.push(result);
      continue;
    }
    measured[name] = Math.round(result.speed);
    if (best === undefined || result.speed > best.speed) best = { name, ...result };
    if (preferred !== undefined) break;
  }
  if (best === undefined) throw new Error(`no usable backend in this browser: ${skipped.join('; ')}`);
  for (const [name, speed] of Object.entries(measured))
    if (name !== best.name) skipped.push(`${name}: ${speed} samples/s, slower than ${best.name}`);
  await tf.setBackend(best.name);
  await tf.ready();
  return {
    name: best.name,
    gpu: best.name !== 'wasm',
    numerics: best.numerics,
    samplesPerSecond: best.speed,
    measured,
    skipped,
  };
}
