import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { chooseWorkerBackend, limitThreads, trainingThreads } from '../../worker/backend-choice.ts';

void describe('the CLI worker’s backend, chosen by measurement', () => {
  void it('times every backend that starts here and trains on the fastest, saying what it measured', async () => {
    const progress: string[] = [];
    const chosen = await chooseWorkerBackend('auto', false, (message) => progress.push(message));
    // No tfjs-node on this machine: wasm and the JS reference backend start, and wasm is faster.
    assert.deepEqual(progress, ['measuring wasm', 'measuring cpu']);
    assert.equal(chosen.name, 'wasm');
    assert.equal(tf.getBackend(), 'wasm', 'the winner is the backend left active');
    assert.ok(chosen.measured.wasm! > chosen.measured.cpu!, JSON.stringify(chosen.measured));
    assert.equal(chosen.measured.wasm, Math.round(chosen.samplesPerSecond));
    assert.ok(
      chosen.skipped.some((reason) => /^cpu: \d+ samples\/s, slower than wasm$/.test(reason)),
      chosen.skipped.join('; '),
    );
    assert.ok(
      chosen.skipped.some((reason) => reason.startsWith('@tensorflow/tfjs-node')),
      'says why native TensorFlow was not tried',
    );
  });

  void it('takes an explicit choice as it is and times only that', async () => {
    const progress: string[] = [];
    const chosen = await chooseWorkerBackend('cpu', false, (message) => progress.push(message));
    assert.deepEqual(
      [chosen.name, progress, Object.keys(chosen.measured)],
      ['cpu', ['measuring cpu'], ['cpu']],
    );
    assert.equal(tf.getBackend(), 'cpu');
  });

  void it('--threads sizes native TensorFlow’s thread pools before it loads; wasm in Node has one thread', () => {
    const env: NodeJS.ProcessEnv = {};
    limitThreads(undefined, env);
    assert.deepEqual(env, {});
    limitThreads(2, env);
    assert.deepEqual(env, { TF_NUM_INTRAOP_THREADS: '2', TF_NUM_INTEROP_THREADS: '1' });
    assert.equal(trainingThreads('tensorflow', 2), 2);
    assert.equal(trainingThreads('wasm', 2), 1);
    assert.ok(trainingThreads('tensorflow', undefined) >= 1);
  });
});
