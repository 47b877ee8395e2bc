import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CheckpointError,
  decodeSafetensors,
  encodeSafetensors,
} from '../../shared/checkpoint/safetensors.ts';
import type { HostTensor } from '../../shared/checkpoint/safetensors.ts';
import { decodeFFF, encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import { type Dataset, DataError } from '../../shared/data/dataset.ts';
import { zeroWeights } from '../../shared/fff/weights.ts';
import { decodeShardData, encodeShardData, SHARD_BLOB_FORMAT } from '../../shared/data/shard-blob.ts';

function sample(n: number, inputWidth: number, classes: number): Dataset {
  const x = new Float32Array(n * inputWidth);
  for (let i = 0; i < x.length; i++) x[i] = ((i * 37) % 101) / 100;
  x[0] = 1 / 3; // not exactly representable in decimal: must still survive bit-exact
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) y[i] = (i * 7) % classes;
  return { name: 'toy', n, inputWidth, classes, x, y };
}

const X = (n: number, width: number): HostTensor => ({
  shape: [n, width],
  data: new Float32Array(n * width),
});
const Y = (...labels: number[]): HostTensor => ({ shape: [labels.length], data: Float32Array.from(labels) });
const META: Record<string, string> = { format: SHARD_BLOB_FORMAT, classes: '3', name: 'bad' };

/** META without `key`. */
function metaWithout(key: string): Record<string, string> {
  const meta = { ...META };
  delete meta[key];
  return meta;
}

/** Asserts that decoding `bytes` throws an error of `type` whose message matches `pattern`. */
function rejects(
  bytes: Uint8Array,
  type: typeof CheckpointError | typeof DataError,
  pattern: RegExp,
  source?: string,
): void {
  assert.throws(
    () => decodeShardData(bytes, source),
    (error: unknown) => {
      assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

void describe('shard blob', () => {
  void it('round-trips x, y, classes, n and inputWidth exactly', () => {
    const data = sample(17, 5, 4);
    const bytes = encodeShardData(data);
    const back = decodeShardData(bytes);
    assert.equal(back.n, 17);
    assert.equal(back.inputWidth, 5);
    assert.equal(back.classes, 4);
    assert.equal(back.name, 'toy');
    assert.ok(back.x instanceof Float32Array);
    assert.ok(back.y instanceof Int32Array);
    assert.deepEqual(
      new Uint32Array(back.x.buffer, back.x.byteOffset, back.x.length),
      new Uint32Array(data.x.buffer, data.x.byteOffset, data.x.length),
    );
    assert.deepEqual(back.y, data.y);
  });

  void it('writes the documented layout: x [n, width], y [n] and the format metadata', () => {
    const data = sample(3, 2, 2);
    const { tensors, metadata } = decodeSafetensors(encodeShardData(data));
    assert.deepEqual(metadata, { format: SHARD_BLOB_FORMAT, classes: '2', name: 'toy' });
    assert.deepEqual([...tensors.keys()].sort(), ['x', 'y']);
    assert.deepEqual(tensors.get('x')?.shape, [3, 2]);
    assert.deepEqual(tensors.get('y')?.shape, [3]);
  });

  void it('round-trips an empty shard and the largest label', () => {
    const empty: Dataset = {
      name: 'e',
      n: 0,
      inputWidth: 3,
      classes: 2,
      x: new Float32Array(0),
      y: new Int32Array(0),
    };
    const back = decodeShardData(encodeShardData(empty));
    assert.equal(back.n, 0);
    assert.equal(back.inputWidth, 3);
    assert.equal(back.classes, 2);
    const wide: Dataset = { ...sample(2, 1, 1000), y: Int32Array.of(999, 0) };
    assert.deepEqual(decodeShardData(encodeShardData(wide)).y, Int32Array.of(999, 0));
  });

  void it('falls back to the source as the name when the metadata has none', () => {
    const back = decodeShardData(encodeSafetensors({ x: X(1, 2), y: Y(2) }, metaWithout('name')), 'shard 7');
    assert.equal(back.name, 'shard 7');
  });

  void it('rejects a wrong or missing metadata format', () => {
    rejects(
      encodeSafetensors({ x: X(1, 2), y: Y(0) }, { ...META, format: 'arbor-shard-0' }),
      CheckpointError,
      /metadata format is "arbor-shard-0", expected "arbor-shard-1"/,
    );
    rejects(
      encodeSafetensors({ x: X(1, 2), y: Y(0) }, metaWithout('format')),
      CheckpointError,
      /metadata format is undefined/,
    );
    rejects(encodeSafetensors({ x: X(1, 2), y: Y(0) }), CheckpointError, /metadata format/);
  });

  void it('rejects bad classes metadata', () => {
    for (const classes of ['abc', '0', '-2', '2.5', '', 'NaN']) {
      rejects(
        encodeSafetensors({ x: X(1, 2), y: Y(0) }, { ...META, classes }),
        CheckpointError,
        new RegExp(`metadata classes is ${JSON.stringify(classes)}`),
      );
    }
    rejects(
      encodeSafetensors({ x: X(1, 2), y: Y(0) }, metaWithout('classes')),
      CheckpointError,
      /metadata classes is undefined/,
    );
  });

  void it('rejects a missing y, a missing x and an extra tensor', () => {
    const want = /expected exactly the tensors x and y/;
    rejects(encodeSafetensors({ x: X(2, 2) }, META), CheckpointError, want);
    rejects(encodeSafetensors({ y: Y(0, 1) }, META), CheckpointError, want);
    rejects(encodeSafetensors({ x: X(2, 2), y: Y(0, 1), z: Y(0) }, META), CheckpointError, want);
    rejects(encodeSafetensors({ x: X(2, 2), labels: Y(0, 1) }, META), CheckpointError, want);
  });

  void it('rejects x and y that disagree on the sample count or rank', () => {
    rejects(
      encodeSafetensors({ x: X(2, 3), y: Y(0, 1, 2) }, META),
      CheckpointError,
      /x \[2,3\] and y \[3\] do not describe the same samples/,
    );
    rejects(
      encodeSafetensors({ x: { shape: [6], data: new Float32Array(6) }, y: Y(0) }, META),
      CheckpointError,
      /x \[6\] and y \[1\]/,
    );
    rejects(
      encodeSafetensors({ x: X(2, 2), y: { shape: [2, 1], data: Float32Array.of(0, 1) } }, META),
      CheckpointError,
      /x \[2,2\] and y \[2,1\]/,
    );
  });

  void it('rejects a label that is not an integer', () => {
    rejects(
      encodeSafetensors({ x: X(3, 2), y: Y(0, 1.5, 2) }, META),
      CheckpointError,
      /label 1\.5 of sample 1 is not an integer/,
    );
    rejects(encodeSafetensors({ x: X(1, 2), y: Y(NaN) }, META), CheckpointError, /label NaN of sample 0/);
    rejects(encodeSafetensors({ x: X(1, 2), y: Y(Infinity) }, META), CheckpointError, /label Infinity/);
  });

  void it('rejects a label outside [0, classes) before storing it', () => {
    rejects(
      encodeSafetensors({ x: X(3, 2), y: Y(0, 3, 1) }, META),
      CheckpointError,
      /label 3 of sample 1 is outside \[0, 3\)/,
    );
    rejects(
      encodeSafetensors({ x: X(2, 2), y: Y(0, -1) }, META),
      CheckpointError,
      /label -1 of sample 1 is outside/,
    );
    rejects(
      encodeSafetensors({ x: X(2, 2), y: Y(0, 2 ** 32) }, META),
      CheckpointError,
      /label 4294967296 of sample 1/,
    );
  });

  void it('rejects an x without features through validateDataset', () => {
    rejects(encodeSafetensors({ x: X(2, 0), y: Y(0, 1) }, META), DataError, /input width 0/);
  });

  void it('names the source in its errors', () => {
    rejects(
      encodeSafetensors({ x: X(1, 2), y: Y(0) }, { ...META, format: 'nope' }),
      CheckpointError,
      /^blobs\/abc: metadata format/,
      'blobs/abc',
    );
    rejects(new Uint8Array(4), CheckpointError, /^blobs\/abc: file is 4 bytes/, 'blobs/abc');
    rejects(new Uint8Array(4), CheckpointError, /^shard blob: /);
  });
});

void describe('pixel shards travel as bytes', () => {
  void it('stores k/255 data (IDX pixels: Fashion-MNIST) as U8, four times smaller on x, bit-exact', () => {
    const n = 500;
    const inputWidth = 784;
    const x = new Float32Array(n * inputWidth);
    for (let i = 0; i < x.length; i++) x[i] = ((i * 37) % 256) / 255;
    const shard: Dataset = {
      name: 'pixels',
      n,
      inputWidth,
      classes: 10,
      x,
      y: new Int32Array(n).map((_, i) => i % 10),
    };
    const blob = encodeShardData(shard);
    assert.equal(decodeSafetensors(blob).tensors.get('x')!.dtype, 'U8');
    const asFloats = encodeSafetensors(
      {
        x: { shape: [shard.n, shard.inputWidth], data: shard.x },
        y: { shape: [shard.n], data: Float32Array.from(shard.y) },
      },
      { format: SHARD_BLOB_FORMAT, classes: '10', name: 'f32' },
    );
    assert.ok(blob.byteLength < asFloats.byteLength / 3.5, `${blob.byteLength} vs ${asFloats.byteLength}`);
    const decoded = decodeShardData(blob);
    assert.deepEqual(decoded.x, shard.x);
    assert.deepEqual(decoded.y, shard.y);
  });

  void it('keeps other data as F32, and refuses bytes without their scale or where floats belong', () => {
    const data = sample(4, 3, 3);
    assert.equal(decodeSafetensors(encodeShardData(data)).tensors.get('x')!.dtype, 'F32');
    const bytesNoScale = encodeSafetensors({ x: { ...X(2, 2), dtype: 'U8' }, y: Y(0, 1) }, META);
    assert.throws(() => decodeShardData(bytesNoScale), /x_scale/);
    const bytesLabels = encodeSafetensors(
      { x: { ...X(2, 2), dtype: 'U8' }, y: { ...Y(0, 1), dtype: 'U8' } },
      { ...META, x_scale: '1/255' },
    );
    assert.throws(() => decodeShardData(bytesLabels), CheckpointError);
  });

  void it('a model checkpoint takes no bytes: every weight is F32', () => {
    const shape = { depth: 2, leafWidth: 2, inputWidth: 3, outputWidth: 2, activation: 'relu' as const };
    const { tensors, metadata } = decodeSafetensors(encodeFFF(zeroWeights(shape)));
    const asBytes = Object.fromEntries(
      [...tensors].map(([name, t], i) => [name, i === 0 ? { ...t, dtype: 'U8' as const } : t]),
    );
    assert.throws(() => decodeFFF(encodeSafetensors(asBytes, metadata)), /not F32/);
  });
});
