import { InputError } from '../input-error.ts';
/**
 * The safetensors file format (https://github.com/huggingface/safetensors), F32 and U8
 * (bytes, such as pixels; decoded to the same Float32Array of their values):
 *
 *   u64 little-endian N | N bytes of UTF-8 JSON header | data section
 *
 * Header: `{"__metadata__": {string: string}, name: {dtype: "F32", shape: [...],
 * data_offsets: [begin, end]}, ...}`, padded with spaces to a multiple of 8 by the encoder.
 * Offsets are relative to the data section; the tensors tile it exactly (no gaps, no
 * overlaps, nothing after the last one). Data is little-endian.
 */
export class CheckpointError extends InputError {
  readonly code = 'CHECKPOINT_INVALID' as const;
}

export type Dtype = 'F32' | 'U8';

export interface HostTensor {
  readonly shape: number[];
  readonly data: Float32Array;
  /** How it is stored (default F32); U8 data must be integers from 0 to 255. */
  readonly dtype?: Dtype;
}

const BYTES_PER: Record<Dtype, number> = { F32: 4, U8: 1 };

export interface DecodedSafetensors {
  readonly tensors: Map<string, HostTensor>;
  readonly metadata: Record<string, string>;
}

const METADATA_KEY = '__metadata__';
const BYTES_PER_F32 = 4;
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/** Little-endian bytes of `data` (a copy). */
function f32ToBytes(data: Float32Array): Uint8Array {
  if (HOST_IS_LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  const out = new Uint8Array(data.length * BYTES_PER_F32);
  const view = new DataView(out.buffer);
  data.forEach((v, i) => view.setFloat32(i * BYTES_PER_F32, v, true));
  return out;
}

/** A fresh (aligned) Float32Array from little-endian bytes at any offset. */
function bytesToF32(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length / BYTES_PER_F32);
  if (HOST_IS_LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(bytes);
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * BYTES_PER_F32, true);
  }
  return out;
}

export function encodeSafetensors(
  tensors: Record<string, HostTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header[METADATA_KEY] = metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, { shape, data }] of Object.entries(tensors)) {
    if (name === METADATA_KEY) throw new RangeError(`tensor name ${METADATA_KEY} is reserved`);
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new RangeError(`tensor ${name}: shape [${shape.join(', ')}] is not non-negative integers`);
    }
    if (product(shape) !== data.length) {
      throw new RangeError(
        `tensor ${name}: shape [${shape.join(', ')}] needs ${product(shape)} values, got ${data.length}`,
      );
    }
    const dtype = tensors[name]!.dtype ?? 'F32';
    if (dtype === 'U8' && !data.every((v) => Number.isInteger(v) && v >= 0 && v <= 255))
      throw new RangeError(`tensor ${name}: U8 data must be integers from 0 to 255`);
    const bytes = dtype === 'U8' ? Uint8Array.from(data) : f32ToBytes(data);
    header[name] = { dtype, shape: [...shape], data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  return assemble(header, chunks, offset);
}

/** The length, the header JSON padded with spaces to a multiple of 8, then the data chunks. */
function assemble(
  header: Record<string, unknown>,
  chunks: readonly Uint8Array[],
  dataLength: number,
): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + dataLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.fill(0x20, 8 + json.length, 8 + padded);
  out.set(json, 8);
  let at = 8 + padded;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** The same file with `extra` added to its metadata; the data section is copied unchanged. */
export function withMetadata(
  bytes: Uint8Array,
  extra: Record<string, string>,
  source = 'safetensors',
): Uint8Array {
  const { header, dataStart } = parseHeader(bytes, source);
  const metadata = parseMetadata(header[METADATA_KEY], (problem) => {
    throw new CheckpointError(source, problem);
  });
  const entries = Object.entries(header).filter(([name]) => name !== METADATA_KEY);
  const data = bytes.subarray(dataStart);
  return assemble(
    { [METADATA_KEY]: { ...metadata, ...extra }, ...Object.fromEntries(entries) },
    [data],
    data.length,
  );
}

/** The data section: every tensor's bytes as stored, in file order. */
export function dataSection(bytes: Uint8Array, source = 'safetensors'): Uint8Array {
  return bytes.subarray(parseHeader(bytes, source).dataStart);
}

interface Entry {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: number[];
  readonly begin: number;
  readonly end: number;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function parseHeader(
  bytes: Uint8Array,
  source: string,
): { header: Record<string, unknown>; dataStart: number } {
  const fail = (problem: string): never => {
    throw new CheckpointError(source, problem);
  };
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, shorter than the 8-byte header length`);
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(bytes.length - 8)) {
    fail(
      `header length ${headerLength} runs beyond the end of the file (${bytes.length - 8} bytes after the length)`,
    );
  }
  const dataStart = 8 + Number(headerLength);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (error) {
    fail(`header is not valid JSON (${(error as Error).message})`);
  }
  if (!isRecord(parsed)) return fail('header JSON is not an object');
  return { header: parsed, dataStart };
}

function parseEntry(name: string, value: unknown, fail: (problem: string) => never): Entry {
  if (!isRecord(value)) fail(`tensor ${name}: entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (dtype !== 'F32' && dtype !== 'U8')
    fail(`tensor ${name}: unsupported dtype ${JSON.stringify(dtype)} (only F32 and U8)`);
  const bytesPer = BYTES_PER[dtype as Dtype];
  if (!Array.isArray(shape) || !shape.every(isIndex)) {
    fail(`tensor ${name}: shape ${JSON.stringify(shape)} is not an array of non-negative integers`);
  }
  const dims = shape;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) {
    fail(
      `tensor ${name}: data_offsets ${JSON.stringify(offsets)} is not [begin, end] of non-negative integers`,
    );
  }
  const [begin, end] = offsets as [number, number];
  const expected = product(dims) * bytesPer;
  if (end < begin || end - begin !== expected) {
    fail(
      `tensor ${name}: data_offsets [${begin}, ${end}] span ${end - begin} bytes, shape [${dims.join(', ')}] needs ${expected}`,
    );
  }
  return { name, dtype: dtype as Dtype, shape: dims, begin, end };
}

function parseMetadata(value: unknown, fail: (problem: string) => never): Record<string, string> {
  if (value === undefined) return {};
  if (!isRecord(value)) return fail(`${METADATA_KEY} is not an object`);
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') fail(`${METADATA_KEY}.${key} is not a string`);
  }
  return { ...(value as Record<string, string>) };
}

export function decodeSafetensors(bytes: Uint8Array, source = 'safetensors'): DecodedSafetensors {
  const fail = (problem: string): never => {
    throw new CheckpointError(source, problem);
  };
  const { header, dataStart } = parseHeader(bytes, source);
  const dataLength = bytes.length - dataStart;
  const metadata = parseMetadata(header[METADATA_KEY], fail);
  const entries = Object.entries(header)
    .filter(([name]) => name !== METADATA_KEY)
    .map(([name, value]) => parseEntry(name, value, fail));

  // The tensors must tile the data section exactly.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const entry of sorted) {
    if (entry.end > dataLength) {
      fail(
        `tensor ${entry.name}: data_offsets [${entry.begin}, ${entry.end}] out of range (data section is ${dataLength} bytes)`,
      );
    }
    if (entry.begin < cursor)
      fail(
        `tensor ${entry.name}: data_offsets [${entry.begin}, ${entry.end}] overlap the previous tensor (ends at ${cursor})`,
      );
    if (entry.begin > cursor)
      fail(`tensor ${entry.name}: gap of ${entry.begin - cursor} bytes before it in the data section`);
    cursor = entry.end;
  }
  if (cursor !== dataLength) fail(`${dataLength - cursor} bytes of trailing garbage after the last tensor`);

  const tensors = new Map<string, HostTensor>();
  for (const { name, dtype, shape, begin, end } of entries) {
    const raw = bytes.subarray(dataStart + begin, dataStart + end);
    tensors.set(name, { shape, dtype, data: dtype === 'U8' ? Float32Array.from(raw) : bytesToF32(raw) });
  }
  return { tensors, metadata };
}
