/**
 * The CLI worker's backend, chosen by measurement as the tab's is (browser/browser-backend.ts):
 * with `--backend auto`, every backend that starts on this machine and trains like the CPU
 * reference is timed on the same small unit, and the fastest wins. An explicit choice is
 * taken as it is, and only timed for the speed the worker tells the coordinator.
 */
import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import {
  BackendError,
  type BackendChoice,
  type BackendInfo,
  type BackendName,
  selectBackend,
  usableBackends,
} from '../shared/backend.ts';
import { numericsFailure, probeNumerics } from '../shared/fff/numerics-probe.ts';
import { measureTrainingSpeed } from './speed-probe.ts';

export interface MeasuredBackend extends BackendInfo {
  /** Training samples per second on the chosen backend: the speed in hello. */
  readonly samplesPerSecond: number;
  /** Every backend timed, samples per second. */
  readonly measured: Readonly<Partial<Record<BackendName, number>>>;
}

/** Samples of the calibration run: enough to time, small enough for the slow JS backend (0.4 s). */
const CALIBRATION_SAMPLES = 512;

/** Started, trains like the CPU reference, and how fast (after a first run that compiles). */
async function calibrate(name: BackendName): Promise<number | string> {
  await tf.setBackend(name);
  await tf.ready();
  // The CPU backend is the reference; WebGPU's numerics were checked as it started.
  if (name !== 'cpu' && name !== 'webgpu') {
    const numerics = await probeNumerics(name);
    if (!numerics.ok) return `${name}: ${numericsFailure(numerics.relativeError)}`;
    await measureTrainingSpeed(CALIBRATION_SAMPLES);
  }
  return measureTrainingSpeed(CALIBRATION_SAMPLES);
}

export async function chooseWorkerBackend(
  choice: BackendChoice,
  gpu: boolean,
  onProgress: (message: string) => void = () => undefined,
): Promise<MeasuredBackend> {
  // The worker speaks through its log: TensorFlow.js's console warnings (its advertisement
  // for tfjs-node when the CPU backend starts) would only confuse a volunteer.
  tf.env().set('PROD', true);
  if (choice !== 'auto') {
    const info = await selectBackend(choice, gpu);
    onProgress(`measuring ${info.name}`);
    const speed = await measureTrainingSpeed();
    return { ...info, samplesPerSecond: speed, measured: { [info.name]: Math.round(speed) } };
  }
  const { usable, skipped } = await usableBackends(choice, gpu);
  const measured: Partial<Record<BackendName, number>> = {};
  let best: { name: BackendName; speed: number } | undefined;
  for (const name of usable) {
    onProgress(`measuring ${name}`);
    const result = await calibrate(name);
    if (typeof result === 'string') {
      skipped.push(result);
      continue;
    }
    measured[name] = Math.round(result);
    if (best === undefined || result > best.speed) best = { name, speed: result };
  }
  if (best === undefined) throw new BackendError(`no usable tensor backend: ${skipped.join('; ')}`);
  for (const [name, speed] of Object.entries(measured))
    if (name !== best.name) skipped.push(`${name}: ${speed} samples/s, slower than ${best.name}`);
  await tf.setBackend(best.name);
  await tf.ready();
  const samplesPerSecond = await measureTrainingSpeed();
  measured[best.name] = Math.round(samplesPerSecond);
  return {
    name: best.name,
    gpu: best.name === 'webgpu' || (gpu && best.name === 'tensorflow'),
    threads: 1,
    skipped,
    samplesPerSecond,
    measured,
  };
}

/**
 * `--threads`: native TensorFlow reads its thread pools' sizes from the environment when it
 * loads, so this runs before any backend starts. wasm in Node has no threads to limit.
 */
export function limitThreads(threads: number | undefined, env: NodeJS.ProcessEnv = process.env): void {
  if (threads === undefined) return;
  env['TF_NUM_INTRAOP_THREADS'] = String(threads);
  env['TF_NUM_INTEROP_THREADS'] = '1';
}

/** The threads training runs on, as the worker tells the coordinator. */
export const trainingThreads = (backend: string, threads: number | undefined): number =>
  backend === 'tensorflow' ? (threads ?? availableParallelism()) : 1;
