/**
 * Checkpoint files carry the SHA-256 of their tensor bytes in their metadata: a file with a
 * few bytes flipped is refused with one line naming it, a file written before checksums
 * loads as before, and other safetensors readers can read and check it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { withChecksum } from '../../shared/checkpoint/checkpoint-checksum.ts';
import { CHECKSUM_KEY, encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import { decodeCheckpointFile, readFFFCheckpoint, writeFFF } from '../../shared/checkpoint/fff-file.ts';
import { CheckpointError, dataSection, decodeSafetensors } from '../../shared/checkpoint/safetensors.ts';
import { initWeights } from '../../shared/fff/init.ts';
import { type FFFShape, TENSOR_NAMES } from '../../shared/fff/weights.ts';

const SHAPE: FFFShape = { depth: 2, leafWidth: 3, inputWidth: 5, outputWidth: 4, activation: 'tanh' };
const weights = initWeights(SHAPE, 5);
const tmp = mkdtempSync(join(tmpdir(), 'arbor-checksum-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The file with 4 bytes of its tensor data inverted, as a failing disk or copy leaves it. */
function flipFourBytes(bytes: Uint8Array): Uint8Array {
  const damaged = bytes.slice();
  const dataStart = damaged.length - dataSection(damaged).length;
  for (const at of [0, 13, 101, 377]) damaged[dataStart + at]! ^= 0xff;
  return damaged;
}

const isDamageOf = (file: string) => (error: unknown) => {
  assert.ok(error instanceof CheckpointError, `expected CheckpointError, got ${String(error)}`);
  assert.equal(error.code, 'CHECKPOINT_INVALID');
  assert.ok(error.message.startsWith(`${file}: `), error.message);
  assert.match(
    error.problem,
    /^checksum mismatch: the file is damaged \(expected [0-9a-f]{64}, got [0-9a-f]{64}\)$/,
  );
  return true;
};

void describe('checkpoint checksum', () => {
  void it('is the SHA-256 of the data section, in the metadata of every file writeFFF writes', async () => {
    const path = join(tmp, 'model.safetensors');
    await writeFFF(path, weights, { step: '3' });
    const bytes = readFileSync(path);
    const { metadata } = decodeSafetensors(bytes);
    assert.equal(metadata[CHECKSUM_KEY], createHash('sha256').update(dataSection(bytes)).digest('hex'));
    assert.equal(metadata.step, '3');
    const back = await readFFFCheckpoint(path);
    for (const name of TENSOR_NAMES) assert.deepEqual(back.weights.tensors[name], weights.tensors[name]);
  });

  void it('refuses a file with 4 flipped bytes in its tensors, naming it', async () => {
    const path = join(tmp, 'damaged.safetensors');
    await writeFFF(path, weights);
    writeFileSync(path, flipFourBytes(readFileSync(path)));
    await assert.rejects(readFFFCheckpoint(path), isDamageOf(path));
    assert.throws(
      () => decodeCheckpointFile(readFileSync(path), 'damaged.safetensors'),
      isDamageOf('damaged.safetensors'),
    );
  });

  void it('refuses a file whose recorded checksum was damaged instead', () => {
    const bytes = withChecksum(encodeFFF(weights));
    const text = Buffer.from(bytes).toString('latin1');
    const at = text.indexOf(`"${CHECKSUM_KEY}":"`) + CHECKSUM_KEY.length + 4;
    bytes[at] = bytes[at] === 0x30 ? 0x31 : 0x30;
    assert.throws(() => decodeCheckpointFile(bytes, 'x.safetensors'), isDamageOf('x.safetensors'));
  });

  void it('loads a file written before checksums (no data_sha256) as before', async () => {
    const path = join(tmp, 'old.safetensors');
    writeFileSync(path, encodeFFF(weights, { step: '1' }));
    const { weights: back, metadata } = await readFFFCheckpoint(path);
    assert.equal(metadata[CHECKSUM_KEY], undefined);
    assert.deepEqual(back.tensors['leaves.w2'], weights.tensors['leaves.w2']);
  });

  void it('leaves the tensors and the other metadata as they were, readable by any safetensors reader', () => {
    const plain = encodeFFF(weights, { step: '7' });
    const stamped = withChecksum(plain);
    assert.deepEqual(dataSection(stamped), dataSection(plain));
    const { [CHECKSUM_KEY]: checksum, ...rest } = decodeSafetensors(stamped).metadata;
    assert.match(checksum ?? '', /^[0-9a-f]{64}$/);
    assert.deepEqual(rest, decodeSafetensors(plain).metadata);
    assert.equal(Number(Buffer.from(stamped).readBigUInt64LE(0)) % 8, 0, 'the header stays padded to 8');
    assert.throws(() => encodeFFF(weights, { [CHECKSUM_KEY]: checksum! }), /reserved key "data_sha256"/);
  });

  void it('is checked by an independent Python reader (struct + json + hashlib)', () => {
    const path = join(tmp, 'python.safetensors');
    writeFileSync(path, withChecksum(encodeFFF(weights)));
    const script = [
      'import hashlib, json, struct, sys',
      'raw = open(sys.argv[1], "rb").read()',
      '(n,) = struct.unpack("<Q", raw[:8])',
      'meta = json.loads(raw[8:8 + n])["__metadata__"]',
      'print(hashlib.sha256(raw[8 + n:]).hexdigest() == meta["data_sha256"])',
    ].join('\n');
    assert.equal(execFileSync('python3', ['-c', script, path], { encoding: 'utf8' }).trim(), 'True');
    writeFileSync(path, flipFourBytes(readFileSync(path)));
    assert.equal(execFileSync('python3', ['-c', script, path], { encoding: 'utf8' }).trim(), 'False');
  });
});
