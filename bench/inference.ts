/**
 * Hard FFF inference (shared/fff/hard-inference.ts) against the dense layer of the same
 * training width W = 2^D · L computed by tfjs on the currently active backend
 * (x[B, I] @ W1[I, W] + b1 -> relu -> @ W2[W, O] + b2). The caller selects the backend.
 * Both use seeded random weights and inputs in [0, 1) (pixel-like); each is warmed up,
 * then timed `reps` times; the median is reported.
 */
import * as tf from '@tensorflow/tfjs';
import { compileHardInference, type HardInferenceOptions } from '../shared/fff/hard-inference.ts';
import { type FFFShape, TENSOR_NAMES, zeroWeights } from '../shared/fff/weights.ts';
import { createRng, uniformFill } from '../shared/random.ts';

export interface InferenceBenchOptions {
  readonly depth: number;
  readonly leaf: number;
  readonly batch: number;
  readonly input?: number;
  readonly output?: number;
  readonly reps?: number;
  /** Recorded in the result; the caller has already activated this tfjs backend. */
  readonly backendName: string;
  /** Which FFF kernel to use (default 'auto': wasm SIMD when available). */
  readonly kernel?: HardInferenceOptions['kernel'];
  readonly seed?: number;
}

export interface InferenceBenchResult {
  readonly depth: number;
  readonly leaf: number;
  readonly width: number;
  readonly batch: number;
  readonly backend: string;
  /** Median wall time of one hard-inference batch (logits), ms. */
  readonly fff_ms: number;
  /** Median wall time of the dense layer on the tfjs backend, ms. */
  readonly ff_ms: number;
  readonly speedup: number;
  /** Engine used by the FFF: 'wasm-simd' or 'js'. */
  readonly fff_kernel: string;
  /** One-off cost of packing the weights (compileHardInference), ms. */
  readonly fff_compile_ms: number;
}

const median = (values: number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

function timeMedian(reps: number, warmup: number, run: () => void): number {
  for (let i = 0; i < warmup; i++) run();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    run();
    times.push(performance.now() - t0);
  }
  return median(times);
}

const round = (v: number, digits = 3): number => Number(v.toFixed(digits));

export async function benchInference(opts: InferenceBenchOptions): Promise<InferenceBenchResult> {
  await tf.ready();
  const { depth, leaf, batch, backendName } = opts;
  const input = opts.input ?? 784;
  const output = opts.output ?? 10;
  const reps = opts.reps ?? 7;
  const rng = createRng(opts.seed ?? 1234);
  const width = 2 ** depth * leaf;

  const shape: FFFShape = {
    depth,
    leafWidth: leaf,
    inputWidth: input,
    outputWidth: output,
    activation: 'relu',
  };
  const weights = zeroWeights(shape);
  for (const name of TENSOR_NAMES) {
    const bound = name === 'leaves.w2' || name === 'leaves.b2' ? 1 / Math.sqrt(leaf) : 1 / Math.sqrt(input);
    uniformFill(weights.tensors[name], bound, rng);
  }
  const x = new Float32Array(batch * input);
  for (let i = 0; i < x.length; i++) x[i] = rng();

  // --- FFF, hard ---
  const c0 = performance.now();
  const model = compileHardInference(weights, opts.kernel === undefined ? {} : { kernel: opts.kernel });
  const compileMs = performance.now() - c0;
  let sink = 0;
  const fffMs = timeMedian(reps, 5, () => {
    sink += model.predictLogits(x, batch)[0]!;
  });

  // --- dense layer of the same width, tfjs ---
  const w1 = new Float32Array(input * width);
  uniformFill(w1, 1 / Math.sqrt(input), rng);
  const w2 = new Float32Array(width * output);
  uniformFill(w2, 1 / Math.sqrt(width), rng);
  const b1 = new Float32Array(width);
  uniformFill(b1, 1 / Math.sqrt(input), rng);
  const b2 = new Float32Array(output);
  uniformFill(b2, 1 / Math.sqrt(width), rng);
  const tensors = {
    x: tf.tensor2d(x, [batch, input]),
    w1: tf.tensor2d(w1, [input, width]),
    b1: tf.tensor1d(b1),
    w2: tf.tensor2d(w2, [width, output]),
    b2: tf.tensor1d(b2),
  };
  const ffMs = timeMedian(reps, 2, () => {
    const y = tf.tidy(() =>
      tf.add(
        tf.matMul(tf.relu(tf.add(tf.matMul(tensors.x, tensors.w1), tensors.b1)), tensors.w2),
        tensors.b2,
      ),
    );
    sink += y.dataSync()[0]!;
    y.dispose();
  });
  for (const t of Object.values(tensors)) t.dispose();
  if (!Number.isFinite(sink)) throw new Error('non-finite benchmark output');

  return {
    depth,
    leaf,
    width,
    batch,
    backend: backendName,
    fff_ms: round(fffMs),
    ff_ms: round(ffMs),
    speedup: round(ffMs / fffMs, 1),
    fff_kernel: model.kernel,
    fff_compile_ms: round(compileMs, 1),
  };
}
