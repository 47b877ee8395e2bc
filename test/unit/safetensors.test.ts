import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { decodeFFF, decodeFFFCheckpoint, encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import { readFFF, writeFFF } from '../../shared/checkpoint/fff-file.ts';
import {
  CheckpointError,
  decodeSafetensors,
  encodeSafetensors,
} from '../../shared/checkpoint/safetensors.ts';
import {
  type FFFShape,
  type FFFWeights,
  TENSOR_NAMES,
  tensorDims,
  zeroWeights,
} from '../../shared/fff/weights.ts';
import { createRng, uniformFill } from '../../shared/random.ts';

const SHAPE: FFFShape = { depth: 2, leafWidth: 3, inputWidth: 5, outputWidth: 4, activation: 'tanh' };

function randomWeights(shape: FFFShape, seed: number): FFFWeights {
  const w = zeroWeights(shape);
  const rng = createRng(seed);
  for (const name of TENSOR_NAMES) uniformFill(w.tensors[name], 1, rng);
  return w;
}

const bits = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** Random non-NaN float32 bit patterns of every magnitude, plus edge values. */
function awkwardFloats(count: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const out = new Float32Array(count);
  const u = bits(out);
  for (let i = 0; i < count; i++) {
    do u[i] = Math.floor(rng() * 2 ** 32) >>> 0;
    while (Number.isNaN(out[i]));
  }
  out.set([-0, 0, 2 ** -149, -(2 ** -149), 1e-40, 3.4028234663852886e38, Infinity, -Infinity], 0);
  return out;
}

/** Raw safetensors bytes from a header (object or literal text) and a data section. */
function craft(header: unknown, data = new Uint8Array(0)): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function assertRejects(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => decodeSafetensors(bytes, 'bad.safetensors'),
    (error: unknown) => {
      assert.ok(error instanceof CheckpointError, `expected CheckpointError, got ${String(error)}`);
      assert.equal(error.code, 'CHECKPOINT_INVALID');
      assert.match(error.message, /^bad\.safetensors: /);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

const tmp = mkdtempSync(join(tmpdir(), 'arbor-safetensors-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

void describe('safetensors encode/decode', () => {
  void it('round-trips bit-exactly, including -0, denormals and infinities, with metadata', () => {
    const a = awkwardFloats(1001, 7);
    const b = awkwardFloats(24, 8);
    const bytes = encodeSafetensors(
      {
        a: { shape: [7, 11, 13], data: a },
        b: { shape: [2, 3, 4], data: b },
        empty: { shape: [0, 5], data: new Float32Array(0) },
      },
      { note: 'hello', n: '3' },
    );
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal(headerLength % 8, 0);
    const decoded = decodeSafetensors(bytes);
    assert.deepEqual(decoded.metadata, { note: 'hello', n: '3' });
    assert.deepEqual([...decoded.tensors.keys()], ['a', 'b', 'empty']);
    assert.deepEqual(decoded.tensors.get('a')?.shape, [7, 11, 13]);
    assert.deepEqual(bits(decoded.tensors.get('a')!.data), bits(a));
    assert.deepEqual(bits(decoded.tensors.get('b')!.data), bits(b));
    assert.equal(decoded.tensors.get('empty')?.data.length, 0);
    assert.ok(Object.is(decoded.tensors.get('a')!.data[0], -0));
  });

  void it('decodes from an unaligned view into fresh arrays', () => {
    const data = awkwardFloats(10, 1);
    const bytes = encodeSafetensors({ t: { shape: [10], data } }, {});
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    const decoded = decodeSafetensors(shifted.subarray(3)).tensors.get('t')!.data;
    assert.deepEqual(bits(decoded), bits(data));
    assert.notEqual(decoded.buffer, shifted.buffer);
  });

  void it('is read correctly by an independent Python reader (struct + json)', () => {
    const weights = randomWeights(SHAPE, 3);
    const path = join(tmp, 'independent.safetensors');
    writeFileSync(path, encodeFFF(weights, { step: '42' }));
    const script = [
      'import json, struct, sys',
      'raw = open(sys.argv[1], "rb").read()',
      '(n,) = struct.unpack("<Q", raw[:8])',
      'header = json.loads(raw[8:8 + n])',
      'data = raw[8 + n:]',
      'out = {"n": n, "header": header, "data_len": len(data), "pad": raw[8:8 + n].decode()[-1:], "values": {}}',
      'for name, t in header.items():',
      '    if name == "__metadata__": continue',
      '    b, e = t["data_offsets"]',
      '    out["values"][name] = list(struct.unpack("<%df" % ((e - b) // 4), data[b:e]))[:3]',
      'print(json.dumps(out))',
    ].join('\n');
    const result = JSON.parse(execFileSync('python3', ['-c', script, path], { encoding: 'utf8' })) as {
      n: number;
      header: Record<
        string,
        { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>
      >;
      data_len: number;
      values: Record<string, number[]>;
    };
    assert.equal(result.n % 8, 0);
    assert.deepEqual(result.header.__metadata__, {
      format: 'arbor-fff-1',
      depth: '2',
      leaf_width: '3',
      input_width: '5',
      output_width: '4',
      activation: 'tanh',
      step: '42',
    });
    const dims = tensorDims(SHAPE);
    let offset = 0;
    for (const name of TENSOR_NAMES) {
      const entry = result.header[name] as { dtype: string; shape: number[]; data_offsets: [number, number] };
      assert.equal(entry.dtype, 'F32');
      assert.deepEqual(entry.shape, dims[name]);
      assert.deepEqual(entry.data_offsets, [offset, offset + weights.tensors[name].length * 4]);
      offset += weights.tensors[name].length * 4;
      assert.deepEqual(result.values[name], [...weights.tensors[name].slice(0, 3)]);
    }
    assert.equal(result.data_len, offset);
  });
});

void describe('safetensors validation', () => {
  const good = { t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const eight = new Uint8Array(8);

  void it('rejects a file shorter than 8 bytes', () =>
    assertRejects(new Uint8Array(5), /shorter than the 8-byte/));
  void it('rejects a header length beyond the file', () => {
    const bytes = craft(good, eight);
    new DataView(bytes.buffer).setBigUint64(0, 2n ** 40n, true);
    assertRejects(bytes, /header length 1099511627776 runs beyond the end/);
  });
  void it('rejects a header that is not JSON', () => assertRejects(craft('{"t": nope'), /not valid JSON/));
  void it('rejects a header that is not an object', () => assertRejects(craft('[1,2]'), /not an object/));
  void it('rejects a dtype other than F32, naming it', () =>
    assertRejects(
      craft({ t: { dtype: 'F16', shape: [4], data_offsets: [0, 8] } }, eight),
      /tensor t: unsupported dtype "F16"/,
    ));
  void it('rejects a bad shape', () => {
    assertRejects(
      craft({ t: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, eight),
      /shape \[-2\] is not an array/,
    );
    assertRejects(craft({ t: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }, eight), /shape \[1.5\]/);
    assertRejects(
      craft({ t: { dtype: 'F32', shape: 2, data_offsets: [0, 8] } }, eight),
      /shape 2 is not an array/,
    );
  });
  void it('rejects data_offsets inconsistent with the shape', () =>
    assertRejects(
      craft({ t: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, eight),
      /span 8 bytes, shape \[3\] needs 12/,
    ));
  void it('rejects overlapping offsets', () =>
    assertRejects(
      craft(
        {
          a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
          b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
        },
        eight,
      ),
      /tensor b: .*overlap/,
    ));
  void it('rejects out-of-range offsets', () =>
    assertRejects(
      craft({ t: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, eight),
      /tensor t: .*out of range/,
    ));
  void it('rejects a gap between tensors', () =>
    assertRejects(craft({ t: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, eight), /gap of 4 bytes/));
  void it('rejects trailing garbage', () =>
    assertRejects(craft(good, new Uint8Array(12)), /4 bytes of trailing garbage/));
  void it('rejects non-string metadata', () =>
    assertRejects(craft({ __metadata__: { a: 1 }, ...good }, eight), /__metadata__\.a is not a string/));
  void it('accepts a hand-made valid file', () => {
    const data = new Uint8Array(new Float32Array([1.5, -2]).buffer);
    assert.deepEqual([...decodeSafetensors(craft(good, data)).tensors.get('t')!.data], [1.5, -2]);
  });
});

void describe('FFF checkpoints', () => {
  void it('round-trip weights and metadata', () => {
    const weights = randomWeights(SHAPE, 11);
    const { weights: back, metadata } = decodeFFFCheckpoint(encodeFFF(weights, { step: '9' }));
    assert.deepEqual(back.shape, SHAPE);
    assert.equal(metadata.step, '9');
    for (const name of TENSOR_NAMES) assert.deepEqual(bits(back.tensors[name]), bits(weights.tensors[name]));
  });

  void it('reject a tensor of the wrong shape, naming it', () => {
    const dims = tensorDims(SHAPE);
    const w = randomWeights(SHAPE, 1);
    const tensors = Object.fromEntries(
      TENSOR_NAMES.map((name) => [name, { shape: dims[name], data: w.tensors[name] }]),
    );
    tensors['leaves.w2'] = { shape: [4, 4, 3], data: w.tensors['leaves.w2'] };
    const bytes = encodeSafetensors(tensors, {
      format: 'arbor-fff-1',
      depth: '2',
      leaf_width: '3',
      input_width: '5',
      output_width: '4',
      activation: 'tanh',
    });
    assert.throws(
      () => decodeFFF(bytes, 'x.safetensors'),
      (error: unknown) =>
        error instanceof CheckpointError &&
        /^x\.safetensors: tensor leaves\.w2 has shape \[4, 4, 3\], expected \[4, 3, 4\]/.test(error.message),
    );
  });

  void it('reject a missing tensor, bad metadata and extra tensors', () => {
    const bytes = encodeFFF(randomWeights(SHAPE, 1));
    const { tensors, metadata } = decodeSafetensors(bytes);
    const rest = Object.fromEntries([...tensors].filter(([name]) => name !== 'nodes.bias'));
    assert.throws(() => decodeFFF(encodeSafetensors(rest, metadata)), /tensor nodes\.bias is missing/);
    assert.throws(
      () => decodeFFF(encodeSafetensors(Object.fromEntries(tensors), { ...metadata, activation: 'gelu' })),
      /activation is "gelu"/,
    );
    assert.throws(
      () => decodeFFF(encodeSafetensors(Object.fromEntries(tensors), { ...metadata, depth: '2.0' })),
      /depth is "2.0"/,
    );
    assert.throws(
      () => decodeFFF(encodeSafetensors(Object.fromEntries(tensors), { ...metadata, format: 'other' })),
      /format is "other"/,
    );
    const extra = { ...Object.fromEntries(tensors), stray: { shape: [1], data: new Float32Array(1) } };
    assert.throws(() => decodeFFF(encodeSafetensors(extra, metadata)), /unexpected tensors: stray/);
  });

  void it('write atomically and read back from disk', async () => {
    const path = join(tmp, 'model.safetensors');
    const first = randomWeights(SHAPE, 21);
    const second = randomWeights(SHAPE, 22);
    await writeFFF(path, first);
    await writeFFF(path, second);
    const back = await readFFF(path);
    assert.deepEqual(bits(back.tensors['nodes.weight']), bits(second.tensors['nodes.weight']));
    assert.deepEqual(
      readdirSync(tmp).filter((f) => f.startsWith('model.')),
      ['model.safetensors'],
    );
    await assert.rejects(
      readFFF(join(tmp, 'absent.safetensors')),
      (error: unknown) =>
        error instanceof CheckpointError && /absent\.safetensors: file not found/.test(error.message),
    );
  });
});
