import { InputError } from '../input-error.ts';
/**
 * In-memory classification datasets: one row per sample, features already scaled to [0,1].
 * Every loader (IDX, embedded MNIST, CSV) produces this shape, so training, routing and
 * evaluation never care where the data came from.
 */
export interface Dataset {
  readonly name: string;
  readonly n: number;
  readonly inputWidth: number;
  readonly classes: number;
  /** n * inputWidth values, row-major, scaled to [0,1]. */
  readonly x: Float32Array;
  /** n labels in [0, classes). */
  readonly y: Int32Array;
  /** [height, width] for image data. */
  readonly imageShape?: readonly [number, number];
  readonly classNames?: readonly string[];
}

export interface DataSplit {
  readonly train: Dataset;
  readonly test: Dataset;
}

/** A dataset file or spec that cannot be used. `source` names the file (or the spec). */
export class DataError extends InputError {
  readonly code = 'DATA_INVALID' as const;
}

/** A new dataset holding copies of the rows at `indices` (in that order). */
export function subset(ds: Dataset, indices: Int32Array): Dataset {
  const width = ds.inputWidth;
  const x = new Float32Array(indices.length * width);
  const y = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const row = indices[i]!;
    if (!Number.isInteger(row) || row < 0 || row >= ds.n) {
      throw new RangeError(`subset of ${ds.name}: index ${row} out of range [0, ${ds.n})`);
    }
    x.set(ds.x.subarray(row * width, (row + 1) * width), i * width);
    y[i] = ds.y[row]!;
  }
  return { ...ds, n: indices.length, x, y };
}

/** The rows of `parts` (same width and classes) one after another. */
export function concatDatasets(parts: readonly Dataset[]): Dataset {
  const first = parts[0];
  if (first === undefined) throw new RangeError('nothing to concatenate');
  const n = parts.reduce((sum, part) => sum + part.n, 0);
  const x = new Float32Array(n * first.inputWidth);
  const y = new Int32Array(n);
  let at = 0;
  for (const part of parts) {
    x.set(part.x.subarray(0, part.n * first.inputWidth), at * first.inputWidth);
    y.set(part.y.subarray(0, part.n), at);
    at += part.n;
  }
  return { ...first, n, x, y };
}

/** Throws DataError unless sizes are consistent and every label is in [0, classes). */
export function validateDataset(ds: Dataset): void {
  const fail = (problem: string): never => {
    throw new DataError(ds.name, problem);
  };
  if (!Number.isInteger(ds.n) || ds.n < 0) fail(`sample count ${ds.n} is not a non-negative integer`);
  if (!Number.isInteger(ds.inputWidth) || ds.inputWidth < 1) {
    fail(`input width ${ds.inputWidth} is not a positive integer`);
  }
  if (!Number.isInteger(ds.classes) || ds.classes < 1) {
    fail(`class count ${ds.classes} is not a positive integer`);
  }
  if (ds.x.length !== ds.n * ds.inputWidth) {
    fail(`x has ${ds.x.length} values, expected n*inputWidth = ${ds.n}*${ds.inputWidth}`);
  }
  if (ds.y.length !== ds.n) fail(`y has ${ds.y.length} labels, expected ${ds.n}`);
  for (let i = 0; i < ds.n; i++) {
    const label = ds.y[i]!;
    if (label < 0 || label >= ds.classes) {
      fail(`label ${label} of sample ${i} is outside [0, ${ds.classes})`);
    }
  }
  if (ds.imageShape && ds.imageShape[0] * ds.imageShape[1] !== ds.inputWidth) {
    fail(`image shape ${ds.imageShape.join('x')} does not match input width ${ds.inputWidth}`);
  }
  if (ds.classNames && ds.classNames.length !== ds.classes) {
    fail(`${ds.classNames.length} class names for ${ds.classes} classes`);
  }
}
