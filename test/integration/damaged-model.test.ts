/**
 * `arbor eval` through the real CLI: a checkpoint with 4 flipped bytes in its tensors is
 * refused in one line naming it (exit 1) instead of evaluating silently wrong, and a
 * checkpoint written before checksums still evaluates.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CHECKSUM_KEY, encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import { writeFFF } from '../../shared/checkpoint/fff-file.ts';
import { dataSection, decodeSafetensors } from '../../shared/checkpoint/safetensors.ts';
import { provenanceMetadata } from '../../shared/data/provenance.ts';
import { initWeights } from '../../shared/fff/init.ts';

const run = promisify(execFile);
const arbor = (args: string[]) =>
  run(process.execPath, ['bin/arbor.js', ...args], {
    timeout: 120_000,
    env: { ...process.env, ARBOR_LOG_LEVEL: 'error' },
  });
const dir = mkdtempSync(join(tmpdir(), 'arbor-damaged-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const weights = initWeights(
  { depth: 2, leafWidth: 2, inputWidth: 784, outputWidth: 10, activation: 'relu' },
  3,
);
const mnist = provenanceMetadata({ spec: 'mnist' });
const accuracy = async (model: string): Promise<number> =>
  (JSON.parse((await arbor(['eval', '--model', model, '--json'])).stdout) as { hard_test_acc: number })
    .hard_test_acc;

void describe('arbor eval of a damaged checkpoint', () => {
  void it('refuses a checkpoint with 4 flipped bytes in one line naming the file, exit 1', async () => {
    const good = join(dir, 'model.safetensors');
    await writeFFF(good, weights, mnist);
    const bytes = readFileSync(good);
    const expected = decodeSafetensors(bytes).metadata[CHECKSUM_KEY];
    const dataStart = bytes.length - dataSection(bytes).length;
    for (const at of [1000, 5001, 9002, 20003]) bytes[dataStart + at]! ^= 0xff;
    const damaged = join(dir, 'damaged.safetensors');
    writeFileSync(damaged, bytes);

    await assert.rejects(
      arbor(['eval', '--model', damaged, '--json']),
      (error: Error & { code: number; stdout: string; stderr: string }) => {
        assert.equal(error.code, 1);
        assert.equal(error.stdout, '');
        const lines = error.stderr.trimEnd().split('\n');
        assert.equal(lines.length, 1, error.stderr);
        assert.match(
          lines[0]!,
          /^arbor: \[CHECKPOINT_INVALID\] .*damaged\.safetensors: checksum mismatch: the file is damaged \(expected [0-9a-f]{64}, got [0-9a-f]{64}\)$/,
        );
        assert.ok(lines[0]!.includes(`${damaged}: `) && lines[0]!.includes(`expected ${expected},`));
        return true;
      },
    );
    assert.ok((await accuracy(good)) >= 0, 'the undamaged file evaluates');
  });

  void it('evaluates a checkpoint written before checksums, as before', async () => {
    const old = join(dir, 'old.safetensors');
    writeFileSync(old, encodeFFF(weights, mnist));
    const current = join(dir, 'current.safetensors');
    await writeFFF(current, weights, mnist);
    assert.equal(await accuracy(old), await accuracy(current));
  });
});
