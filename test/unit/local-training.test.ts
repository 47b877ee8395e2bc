import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../shared/backend.ts';
import { tensorAccuracy } from '../../shared/fff/evaluate.ts';
import { initWeights } from '../../shared/fff/init.ts';
import { subtractWeights, trainUnit } from '../../shared/fff/local-training.ts';
import { TrainableFFF } from '../../shared/fff/soft-model.ts';
import { type OptimizerCarry, samplesOfRun } from '../../shared/fff/trainer.ts';
import { TENSOR_NAMES, cloneWeights } from '../../shared/fff/weights.ts';
import { createRng } from '../../shared/random.ts';

before(async () => {
  await selectBackend('wasm');
});

function separable(n: number, seed: number) {
  const rng = createRng(seed);
  const x = Float32Array.from({ length: n * 6 }, () => rng() * 2 - 1);
  const y = Int32Array.from({ length: n }, (_, i) => (x[i * 6]! + x[i * 6 + 1]! > 0 ? 1 : 0));
  return { n, inputWidth: 6, x, y };
}

const recipe = {
  epochs: 12,
  batchSize: 32,
  lr: 1e-2,
  optimizer: 'adam' as const,
  hardening: 1,
  leak: 0,
  seed: 2,
};

void describe('trainUnit (a worker trains one shard)', () => {
  const base = initWeights({ depth: 2, leafWidth: 4, inputWidth: 6, outputWidth: 2, activation: 'relu' }, 5);

  void it('returns local - base: base + delta is a model that learned the shard', async () => {
    const data = separable(512, 1);
    const untrained = new TrainableFFF(base);
    const before = tensorAccuracy(untrained, data, 'hard');
    untrained.dispose();
    const baseCopy = cloneWeights(base);
    const result = await trainUnit(base, data, recipe);
    assert.deepEqual(base.tensors, baseCopy.tensors, 'base must not be modified');
    const local = cloneWeights(base);
    for (const name of TENSOR_NAMES)
      local.tensors[name].forEach((v, i, arr) => (arr[i] = v + result.delta.tensors[name][i]!));
    const model = new TrainableFFF(local);
    const after = tensorAccuracy(model, separable(256, 9), 'hard');
    model.dispose();
    assert.ok(after > 0.85 && after > before, `accuracy ${before} -> ${after}`);
    assert.equal(result.samples, 512 * recipe.epochs);
    assert.equal(result.stopped, false);
  });

  void it('leaves no tensors behind', async () => {
    const count = tf.memory().numTensors;
    await trainUnit(base, separable(64, 3), { ...recipe, epochs: 3 });
    assert.equal(tf.memory().numTensors, count);
  });

  void it('stops when asked and says so', async () => {
    let steps = 0;
    const result = await trainUnit(base, separable(512, 4), recipe, { shouldStop: () => ++steps > 3 });
    assert.equal(result.stopped, true);
    assert.ok(result.samples <= 3 * 32);
  });

  void it('saves what it trained so far on its checkpoint clock, the same delta a stop there would send', async () => {
    const data = separable(512, 4);
    let now = 0;
    const saves: { samples: number; seconds: number; norm: number }[] = [];
    let stoppedAt: number | undefined;
    const stopped = await trainUnit(base, data, recipe, {
      shouldStop: () => saves.length >= 2 && (stoppedAt ??= saves[1]!.samples) !== undefined,
      betweenSteps: () => Promise.resolve(void (now += 100)),
      checkpoint: {
        everyMs: 1000,
        now: () => now,
        save: (partial) => {
          const norm = Math.hypot(...TENSOR_NAMES.flatMap((name) => [...partial.delta.tensors[name]]));
          saves.push({ samples: partial.samples, seconds: partial.seconds, norm });
          return Promise.resolve();
        },
      },
    });
    assert.equal(saves.length, 2, 'one save a second of the clock');
    assert.deepEqual(
      saves.map((save) => [save.samples, save.seconds]),
      [
        [10 * 32, 1],
        [20 * 32, 2],
      ],
    );
    assert.ok(
      saves.every((save) => save.norm > 0),
      'a saved delta shows training',
    );
    assert.equal(stopped.samples, stoppedAt, 'stopped right after the second save');
    const stoppedNorm = Math.hypot(...TENSOR_NAMES.flatMap((name) => [...stopped.delta.tensors[name]]));
    assert.ok(Math.abs(stoppedNorm - saves[1]!.norm) < 1e-9 * stoppedNorm, "the save is the stop's delta");
  });

  void it('trains exactly the samples samplesOfRun predicts, for any window of the schedule', async () => {
    const data = separable(195, 6); // 7 minibatches a pass, the last of 3 samples
    for (const [from, to] of [
      [0, 1 / 48],
      [0.1, 0.1625],
      [0.3, 0.4],
      [0.62, 0.71],
      [0.5, 1],
    ] as const) {
      const epochs = (to - from) * recipe.epochs;
      const result = await trainUnit(base, data, recipe, {}, { from, to });
      assert.equal(result.samples, samplesOfRun(epochs, data.n, recipe.batchSize), `window ${from}-${to}`);
    }
  });

  void it("resumes Adam's moments from the previous unit of the same phase, leaking no tensors", async () => {
    const data = separable(256, 8);
    const window = { from: 0, to: 1 / 12 };
    const next = { from: 1 / 12, to: 2 / 12 };
    let carry: OptimizerCarry | undefined;
    const count = tf.memory().numTensors;
    await trainUnit(base, data, recipe, { onOptimizerState: (c) => (carry = c) }, window);
    assert.equal(carry?.phase, 'soft');
    assert.equal(carry.slots.length, 1 + 2 * TENSOR_NAMES.length, 'step count, then two moments a tensor');
    const fresh = await trainUnit(base, data, recipe, {}, next);
    const resumed = await trainUnit(base, data, recipe, { resumeOptimizer: carry }, next);
    assert.notDeepEqual(resumed.delta.tensors['nodes.weight'], fresh.delta.tensors['nodes.weight']);
    const noMomentum = await trainUnit(
      base,
      data,
      recipe,
      { resumeOptimizer: { ...carry, momentum: false } },
      next,
    );
    assert.notDeepEqual(noMomentum.delta.tensors['nodes.weight'], resumed.delta.tensors['nodes.weight']);
    assert.notDeepEqual(noMomentum.delta.tensors['nodes.weight'], fresh.delta.tensors['nodes.weight']);
    const otherPhase = await trainUnit(
      base,
      data,
      recipe,
      { resumeOptimizer: { ...carry, phase: 'harden' } },
      next,
    );
    assert.deepEqual(otherPhase.delta.tensors, fresh.delta.tensors, 'another phase: moments start afresh');
    assert.equal(tf.memory().numTensors, count);
  });

  void it('reports the data term as its loss: never negative, though the path balance term is', async () => {
    const data = separable(256, 6);
    const siblings = new Float32Array(data.n * 2 * 2);
    const levels = 2;
    // An overfull path (97% of the samples on its side) makes the balance term large and negative.
    const path = {
      levels,
      directions: [1, 1],
      weight: new Float32Array(levels * 6),
      bias: Float32Array.of(4, 4),
      onShare: Float32Array.of(0.03, 0.03),
      balance: 5,
    };
    const losses: number[] = [];
    const result = await trainUnit(
      base,
      { ...data, siblings },
      { ...recipe, epochs: 2 },
      { reportEvery: 1, onStep: (report) => losses.push(report.loss) },
      undefined,
      path,
    );
    assert.ok(result.pathDelta !== undefined, 'the path trained');
    assert.ok(losses.length > 10, `${losses.length} reports`);
    assert.ok(
      losses.every((loss) => Number.isFinite(loss) && loss >= 0),
      `losses ${losses.slice(0, 5).join(', ')}…`,
    );
    assert.equal(result.finalLoss, losses.at(-1));
  });

  void it('subtracting weights of another shape is refused', () => {
    const other = initWeights(
      { depth: 3, leafWidth: 4, inputWidth: 6, outputWidth: 2, activation: 'relu' },
      1,
    );
    assert.throws(() => subtractWeights(base, other), RangeError);
  });
});
