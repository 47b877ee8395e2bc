/**
 * Reader for the IDX files of the MNIST family (MNIST, Fashion-MNIST, KMNIST...).
 *
 * Layout: two zero bytes, a dtype byte (0x08 = unsigned byte, the only one supported),
 * a rank byte, then `rank` big-endian u32 dimensions, then the data. Labels are rank 1
 * (magic 0x00000801), images rank 3 (magic 0x00000803). Files may be gzipped (1f 8b).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DataError, type DataSplit, type Dataset } from './dataset.ts';

export interface IdxImages {
  readonly n: number;
  readonly rows: number;
  readonly cols: number;
  /** n * rows * cols bytes, row-major. */
  readonly pixels: Uint8Array;
}

const DTYPE_NAMES: Readonly<Record<number, string>> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};

function readBytes(path: string): Uint8Array {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new DataError(
      path,
      code === 'ENOENT' ? 'file not found' : `cannot read (${code ?? String(error)})`,
    );
  }
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return gunzipSync(raw);
    } catch (error) {
      throw new DataError(path, `corrupt gzip data (${(error as Error).message})`);
    }
  }
  return raw;
}

/** Reads an unsigned-byte IDX file of the given rank; returns its dims and data bytes. */
function readIdx(path: string, rank: number): { dims: number[]; data: Uint8Array } {
  const bytes = readBytes(path);
  const expectedMagic = `0x0000080${rank}`;
  if (bytes.length < 4) throw new DataError(path, `truncated: ${bytes.length} bytes, no IDX header`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const magic = Buffer.from(bytes.subarray(0, 4)).toString('hex');
    throw new DataError(path, `bad magic 0x${magic}, expected ${expectedMagic} (not an IDX file?)`);
  }
  const dtype = bytes[2]!;
  if (dtype !== 0x08) {
    const name = DTYPE_NAMES[dtype] ?? 'unknown';
    throw new DataError(
      path,
      `unsupported IDX dtype 0x${dtype.toString(16).padStart(2, '0')} (${name}); only unsigned byte (0x08) is supported`,
    );
  }
  if (bytes[3] !== rank) {
    throw new DataError(path, `bad magic: rank ${bytes[3]}, expected ${expectedMagic} (rank ${rank})`);
  }
  const headerLength = 4 + 4 * rank;
  if (bytes.length < headerLength) {
    throw new DataError(path, `truncated: ${bytes.length} bytes, header needs ${headerLength}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const expected = dims.reduce((a, b) => a * b, 1);
  const actual = bytes.length - headerLength;
  if (actual < expected) {
    throw new DataError(
      path,
      `truncated: dims ${dims.join('x')} need ${expected} data bytes, file has ${actual}`,
    );
  }
  if (actual > expected) {
    throw new DataError(path, `${actual - expected} trailing bytes after the ${dims.join('x')} data`);
  }
  return { dims, data: bytes.subarray(headerLength) };
}

export function readIdxImages(path: string): IdxImages {
  const { dims, data } = readIdx(path, 3);
  const [n, rows, cols] = dims as [number, number, number];
  return { n, rows, cols, pixels: data };
}

export function readIdxLabels(path: string): Uint8Array {
  return readIdx(path, 1).data;
}

/** Finds `<prefix>-<kind>` (or `<prefix>-<kind with '.' for the dash>`), plain or `.gz`. */
function findFile(dir: string, stem: string): string {
  const dotted = stem.replace(/-(idx\d-ubyte)$/, '.$1');
  const candidates = [stem, `${stem}.gz`, dotted, `${dotted}.gz`];
  for (const name of candidates) {
    const path = join(dir, name);
    if (existsSync(path)) return path;
  }
  throw new DataError(dir, `missing ${stem} (looked for ${candidates.join(', ')})`);
}

function loadPart(dir: string, prefix: string, name: string, classes: number): Dataset {
  const imagesPath = findFile(dir, `${prefix}-images-idx3-ubyte`);
  const labelsPath = findFile(dir, `${prefix}-labels-idx1-ubyte`);
  const images = readIdxImages(imagesPath);
  const labels = readIdxLabels(labelsPath);
  if (labels.length !== images.n) {
    throw new DataError(
      imagesPath,
      `count mismatch: ${images.n} images but ${labels.length} labels in ${labelsPath}`,
    );
  }
  const y = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    if (label >= classes)
      throw new DataError(labelsPath, `label ${label} of sample ${i} is not in [0, ${classes})`);
    y[i] = label;
  }
  const x = new Float32Array(images.pixels.length);
  for (let i = 0; i < x.length; i++) x[i] = images.pixels[i]! / 255;
  return {
    name,
    n: images.n,
    inputWidth: images.rows * images.cols,
    classes,
    x,
    y,
    imageShape: [images.rows, images.cols],
  };
}

/**
 * Loads the four standard files (train-images-idx3-ubyte, train-labels-idx1-ubyte,
 * t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; each plain or .gz) from `dir`.
 * Pixels are scaled to [0,1]; labels must lie in [0, classes).
 */
export function loadIdxDirectory(dir: string, name: string, classes = 10): DataSplit {
  if (!existsSync(dir)) throw new DataError(dir, 'directory not found');
  const train = loadPart(dir, 'train', `${name}/train`, classes);
  const test = loadPart(dir, 't10k', `${name}/test`, classes);
  if (train.inputWidth !== test.inputWidth) {
    throw new DataError(
      dir,
      `train images are ${train.imageShape?.join('x')}, test images ${test.imageShape?.join('x')}`,
    );
  }
  return { train, test };
}
