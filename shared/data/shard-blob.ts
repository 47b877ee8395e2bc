/**
 * A shard's training samples as an immutable blob: safetensors with `x` [n, inputWidth] and
 * `y` [n] (labels as exact small floats), metadata format "arbor-shard-1" and `classes`.
 * Pixel data (the MNIST family) is stored as U8 with metadata `x_scale` "1/255".
 * One format for what the coordinator packs and the worker trains on.
 */
import { CheckpointError, decodeSafetensors, encodeSafetensors } from '../checkpoint/safetensors.ts';
import { type Dataset, validateDataset } from './dataset.ts';

export const SHARD_BLOB_FORMAT = 'arbor-shard-1';

/** Pixel data (every value exactly k/255 in float32) travels as bytes: 4x smaller, lossless. */
function asBytes(x: Float32Array): Float32Array | undefined {
  const bytes = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const k = Math.round(x[i]! * 255);
    if (k < 0 || k > 255 || Math.fround(k / 255) !== x[i]) return undefined;
    bytes[i] = k;
  }
  return bytes;
}

export function encodeShardData(data: Dataset): Uint8Array {
  const bytes = asBytes(data.x);
  return encodeSafetensors(
    {
      x:
        bytes === undefined
          ? { shape: [data.n, data.inputWidth], data: data.x }
          : { shape: [data.n, data.inputWidth], data: bytes, dtype: 'U8' },
      y: { shape: [data.n], data: Float32Array.from(data.y) },
    },
    {
      format: SHARD_BLOB_FORMAT,
      classes: String(data.classes),
      name: data.name,
      ...(bytes !== undefined ? { x_scale: '1/255' } : {}),
    },
  );
}

export function decodeShardData(bytes: Uint8Array, source = 'shard blob'): Dataset {
  const fail = (problem: string): never => {
    throw new CheckpointError(source, problem);
  };
  const { tensors, metadata } = decodeSafetensors(bytes, source);
  if (metadata.format !== SHARD_BLOB_FORMAT)
    fail(`metadata format is ${JSON.stringify(metadata.format)}, expected "${SHARD_BLOB_FORMAT}"`);
  const classes = /^\d+$/.test(metadata.classes ?? '') ? Number(metadata.classes) : NaN;
  if (!Number.isInteger(classes) || classes < 1)
    fail(`metadata classes is ${JSON.stringify(metadata.classes)}`);
  const x = tensors.get('x');
  const y = tensors.get('y');
  if (x === undefined || y === undefined || tensors.size !== 2) fail('expected exactly the tensors x and y');
  if (x!.shape.length !== 2 || y!.shape.length !== 1 || x!.shape[0] !== y!.shape[0])
    fail(`x ${JSON.stringify(x!.shape)} and y ${JSON.stringify(y!.shape)} do not describe the same samples`);
  const n = y!.shape[0]!;
  const scaled = x!.dtype === 'U8';
  if (scaled !== (metadata.x_scale === '1/255'))
    fail('x is stored as bytes only with metadata x_scale "1/255"');
  if (y!.dtype === 'U8') fail('y must be F32');
  if (scaled) for (let i = 0; i < x!.data.length; i++) x!.data[i] = x!.data[i]! / 255;
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const label = y!.data[i]!;
    if (!Number.isInteger(label)) fail(`label ${label} of sample ${i} is not an integer`);
    if (label < 0 || label >= classes) fail(`label ${label} of sample ${i} is outside [0, ${classes})`);
    labels[i] = label;
  }
  const dataset: Dataset = {
    name: metadata.name ?? source,
    n,
    inputWidth: x!.shape[1]!,
    classes,
    x: x!.data,
    y: labels,
  };
  validateDataset(dataset);
  return dataset;
}
