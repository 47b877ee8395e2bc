import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../shared/backend.ts';
import { tensorAccuracy } from '../../shared/fff/evaluate.ts';
import { compileHardInference } from '../../shared/fff/hard-inference.ts';
import { TrainableFFF, crossEntropy, decisionEntropy, forward } from '../../shared/fff/soft-model.ts';
import { assembleSubtrees, extractSubtree, writeSubtree } from '../../shared/fff/subtree.ts';
import { type Phase, type Recipe, type TrainingSet, trainFFF } from '../../shared/fff/trainer.ts';
import {
  type FFFShape,
  type FFFWeights,
  type TensorName,
  TENSOR_NAMES,
  cloneWeights,
  leafCount,
  nodeCount,
} from '../../shared/fff/weights.ts';
import { createRng, uniformFill } from '../../shared/random.ts';
import { initWeights } from '../../shared/fff/init.ts';

const randomWeights = initWeights;

function randomInput(n: number, width: number, seed: number, bound = 1): Float32Array {
  const x = new Float32Array(n * width);
  uniformFill(x, bound, createRng(seed));
  return x;
}

/** Runs `forward` on host data and returns logits and node logits as host arrays. */
function runForward(
  weights: FFFWeights,
  x: Float32Array,
  n: number,
  routing: 'soft' | 'hard',
): { logits: Float32Array; nodeLogits: Float32Array } {
  const model = new TrainableFFF(weights);
  try {
    const [logits, nodeLogits] = tf.tidy(() => {
      const out = forward(model, tf.tensor2d(x, [n, weights.shape.inputWidth]), { routing });
      return [out.logits, out.nodeLogits];
    });
    const result = {
      logits: logits.dataSync().slice() as Float32Array,
      nodeLogits: nodeLogits.dataSync().slice() as Float32Array,
    };
    logits.dispose();
    nodeLogits.dispose();
    return result;
  } finally {
    model.dispose();
  }
}

function argmaxRow(values: Float32Array, row: number, width: number): number {
  let best = 0;
  for (let o = 1; o < width; o++) if (values[row * width + o]! > values[row * width + best]!) best = o;
  return best;
}

/** Smallest |node logit| along the hard path of sample s (the decision closest to a tie). */
function pathMargin(nodeLogits: Float32Array, s: number, depth: number): number {
  const nodes = nodeCount(depth);
  let node = 0;
  let margin = Infinity;
  for (let d = 0; d < depth; d++) {
    const z = nodeLogits[s * nodes + node]!;
    margin = Math.min(margin, Math.abs(z));
    node = z > 0 ? 2 * node + 2 : 2 * node + 1;
  }
  return margin;
}

void describe('FFF soft model and subtrees', () => {
  before(async () => {
    await selectBackend('wasm');
  });

  void it('soft-loss gradients match central finite differences', () => {
    const shape: FFFShape = { depth: 2, leafWidth: 3, inputWidth: 5, outputWidth: 3, activation: 'tanh' };
    const weights = randomWeights(shape, 11);
    // Larger node weights so decisions are not all near 0.5 (the entropy term then has real slope).
    weights.tensors['nodes.weight'].forEach((v, i, a) => (a[i] = v * 3));
    const n = 8;
    const x = randomInput(n, shape.inputWidth, 12);
    const y = Int32Array.from({ length: n }, (_, i) => i % shape.outputWidth);

    const lossFn = (model: TrainableFFF): tf.Scalar => {
      const out = forward(model, tf.tensor2d(x, [n, shape.inputWidth]), { routing: 'soft' });
      return tf.add(
        crossEntropy(out.logits, tf.tensor1d(y, 'int32')),
        tf.mul(3, decisionEntropy(out.nodeLogits)),
      );
    };
    const lossAt = (w: FFFWeights): number => {
      const model = new TrainableFFF(w);
      const value = tf.tidy(() => lossFn(model).dataSync()[0]!);
      model.dispose();
      return value;
    };

    const model = new TrainableFFF(weights);
    const grads = tf.tidy(() => {
      const { grads: g } = tf.variableGrads(() => lossFn(model));
      return Object.fromEntries(Object.entries(g).map(([k, t]) => [k, t.dataSync().slice() as Float32Array]));
    });
    // variableGrads keys by variable name; map back to tensor names.
    const gradOf = (name: TensorName): Float32Array => {
      const g = grads[model.vars[name].name];
      assert.ok(g, `no gradient for ${name}`);
      return g;
    };

    const probes: [TensorName, number][] = [
      ['nodes.weight', 1 * shape.inputWidth + 2],
      ['nodes.bias', 0],
      ['nodes.bias', 2],
      ['leaves.w1', 1 * shape.inputWidth * shape.leafWidth + 3 * shape.leafWidth + 1],
      ['leaves.b2', 2 * shape.outputWidth + 1],
    ];
    const eps = 1e-2;
    for (const [name, index] of probes) {
      const plus = cloneWeights(weights);
      const minus = cloneWeights(weights);
      plus.tensors[name][index] = weights.tensors[name][index]! + eps;
      minus.tensors[name][index] = weights.tensors[name][index]! - eps;
      const h = plus.tensors[name][index] - minus.tensors[name][index];
      const numeric = (lossAt(plus) - lossAt(minus)) / h;
      const analytic = gradOf(name)[index]!;
      assert.ok(
        Math.abs(analytic) > 1e-3,
        `${name}[${index}] gradient ${analytic} too small to be a meaningful probe`,
      );
      const tol = 5e-2 * Math.max(Math.abs(analytic), Math.abs(numeric));
      assert.ok(
        Math.abs(analytic - numeric) <= tol,
        `${name}[${index}]: analytic ${analytic} vs finite difference ${numeric}`,
      );
    }
    model.dispose();
  });

  void it('soft leaf mixture weights sum to 1', () => {
    const depth = 3;
    const n = 32;
    // Constant leaves: every leaf outputs c, so any convex mixture outputs c.
    const shape: FFFShape = { depth, leafWidth: 4, inputWidth: 6, outputWidth: 3, activation: 'relu' };
    const w = randomWeights(shape, 21);
    w.tensors['nodes.weight'].forEach((v, i, a) => (a[i] = v * 4));
    w.tensors['leaves.w1'].fill(0);
    w.tensors['leaves.w2'].fill(0);
    const c = [0.7, -1.3, 2.5];
    for (let l = 0; l < leafCount(depth); l++) w.tensors['leaves.b2'].set(c, l * c.length);
    const x = randomInput(n, shape.inputWidth, 22, 2);
    const { logits } = runForward(w, x, n, 'soft');
    for (let s = 0; s < n; s++) {
      for (let o = 0; o < c.length; o++) {
        assert.ok(
          Math.abs(logits[s * c.length + o]! - c[o]!) < 1e-5,
          `sample ${s} output ${o}: ${logits[s * c.length + o]}`,
        );
      }
    }

    // One-hot leaves: output i is the mixture weight of leaf i.
    const leaves = leafCount(depth);
    const shape2: FFFShape = { ...shape, outputWidth: leaves };
    const w2 = randomWeights(shape2, 23);
    w2.tensors['nodes.weight'].forEach((v, i, a) => (a[i] = v * 4));
    w2.tensors['leaves.w2'].fill(0);
    w2.tensors['leaves.b2'].fill(0);
    for (let l = 0; l < leaves; l++) w2.tensors['leaves.b2'][l * leaves + l] = 1;
    const mix = runForward(w2, x, n, 'soft').logits;
    let nonUniform = false;
    for (let s = 0; s < n; s++) {
      let sum = 0;
      for (let l = 0; l < leaves; l++) {
        const m = mix[s * leaves + l]!;
        assert.ok(m >= 0, `sample ${s} leaf ${l} weight ${m} < 0`);
        if (Math.abs(m - 1 / leaves) > 0.05) nonUniform = true;
        sum += m;
      }
      assert.ok(Math.abs(sum - 1) < 1e-5, `sample ${s}: mixture sums to ${sum}`);
    }
    assert.ok(nonUniform, 'mixtures are all uniform: the test would not detect a wrong mixture');
  });

  void it('hard-routing forward equals compiled hard inference', () => {
    const shape: FFFShape = { depth: 3, leafWidth: 5, inputWidth: 7, outputWidth: 4, activation: 'relu' };
    const w = randomWeights(shape, 31);
    const n = 200;
    const x = randomInput(n, shape.inputWidth, 32);
    const compiled = compileHardInference(w);
    const reference = compiled.predictLogits(x, n);
    const { logits, nodeLogits } = runForward(w, x, n, 'hard');
    let compared = 0;
    for (let s = 0; s < n; s++) {
      if (pathMargin(nodeLogits, s, shape.depth) < 1e-4) continue; // near tie: float32 kernels may disagree
      compared++;
      for (let o = 0; o < shape.outputWidth; o++) {
        const diff = Math.abs(logits[s * 4 + o]! - reference[s * 4 + o]!);
        assert.ok(
          diff < 1e-4,
          `sample ${s} output ${o}: tensor ${logits[s * 4 + o]} vs compiled ${reference[s * 4 + o]}`,
        );
      }
    }
    assert.ok(compared > n * 0.95, `only ${compared} samples compared`);
    // The hard path must actually vary across samples.
    assert.ok(new Set(compiled.route(x, n)).size > 2, 'all samples routed to (almost) one leaf');
  });

  void it('saturated soft routing agrees with hard inference; b2 matters', () => {
    const shape: FFFShape = { depth: 3, leafWidth: 5, inputWidth: 7, outputWidth: 4, activation: 'relu' };
    const w = randomWeights(shape, 41);
    w.tensors['nodes.weight'].forEach((v, i, a) => (a[i] = v * 1000));
    w.tensors['nodes.bias'].forEach((v, i, a) => (a[i] = v * 1000));
    // Make b2 dominate so argmax depends on it.
    w.tensors['leaves.b2'].forEach((v, i, a) => (a[i] = v * 5));
    const n = 300;
    const x = randomInput(n, shape.inputWidth, 42);
    const compiled = compileHardInference(w);
    const hard = compiled.predictLogits(x, n);
    const hardClasses = compiled.predictClasses(x, n);
    const { logits: soft, nodeLogits } = runForward(w, x, n, 'soft');
    const O = shape.outputWidth;
    let compared = 0;
    for (let s = 0; s < n; s++) {
      // Skip samples whose path has a decision that is not saturated (|z| < 15 → sigmoid not ~0/1).
      if (pathMargin(nodeLogits, s, shape.depth) < 15) continue;
      compared++;
      assert.equal(argmaxRow(soft, s, O), hardClasses[s], `sample ${s}: soft argmax differs from hard`);
      for (let o = 0; o < O; o++) assert.ok(Math.abs(soft[s * O + o]! - hard[s * O + o]!) < 1e-3);
    }
    assert.ok(compared > n * 0.8, `only ${compared} samples saturated`);

    const noBias = cloneWeights(w);
    noBias.tensors['leaves.b2'].fill(0);
    const hardNoBias = compileHardInference(noBias).predictLogits(x, n);
    let maxDiff = 0;
    for (let i = 0; i < hard.length; i++) maxDiff = Math.max(maxDiff, Math.abs(hard[i]! - hardNoBias[i]!));
    assert.ok(maxDiff > 0.1, 'zeroing b2 did not change the hard logits');
    const { logits: softNoBias } = runForward(noBias, x, n, 'soft');
    let softDiff = 0;
    for (let i = 0; i < soft.length; i++) softDiff = Math.max(softDiff, Math.abs(soft[i]! - softNoBias[i]!));
    assert.ok(softDiff > 0.1, 'zeroing b2 did not change the soft logits');
  });

  void it('extract → assemble is the identity, and subtrees reproduce the full tree on their shard', () => {
    const shape: FFFShape = { depth: 4, leafWidth: 3, inputWidth: 6, outputWidth: 5, activation: 'tanh' };
    const w = randomWeights(shape, 51);
    const n = 400;
    const x = randomInput(n, shape.inputWidth, 52);
    const full = compileHardInference(w);
    const fullLogits = full.predictLogits(x, n);
    const O = shape.outputWidth;
    for (const K of [1, 2]) {
      const subtrees = Array.from({ length: 2 ** K }, (_, s) => extractSubtree(w, K, s));
      for (const sub of subtrees) assert.equal(sub.shape.depth, shape.depth - K);
      // The top for assembly has garbage below the frozen levels: it must be overwritten.
      const top = cloneWeights(w);
      top.tensors['nodes.weight'].fill(999, (2 ** K - 1) * shape.inputWidth);
      top.tensors['nodes.bias'].fill(999, 2 ** K - 1);
      for (const name of ['leaves.w1', 'leaves.b1', 'leaves.w2', 'leaves.b2'] as const)
        top.tensors[name].fill(999);
      const assembled = assembleSubtrees(top, K, subtrees);
      for (const name of TENSOR_NAMES)
        assert.deepEqual(assembled.tensors[name], w.tensors[name], `K=${K} ${name}`);
      assert.deepEqual(assembled.shape, w.shape);

      const shards = full.routeToDepth(x, n, K);
      const seen = new Set<number>();
      subtrees.forEach((sub, shard) => {
        const subLogits = compileHardInference(sub).predictLogits(x, n);
        for (let s = 0; s < n; s++) {
          if (shards[s] !== shard) continue;
          seen.add(shard);
          for (let o = 0; o < O; o++) {
            assert.ok(
              Math.abs(subLogits[s * O + o]! - fullLogits[s * O + o]!) < 1e-6,
              `K=${K} shard ${shard} sample ${s} output ${o}`,
            );
          }
        }
      });
      assert.ok(seen.size >= 2, `K=${K}: samples reached only ${seen.size} shard(s)`);
    }

    // writeSubtree changes only its own shard's region.
    const target = cloneWeights(w);
    const replaced = extractSubtree(w, 2, 1);
    for (const name of TENSOR_NAMES) replaced.tensors[name].fill(7);
    writeSubtree(target, 2, 1, replaced);
    assert.deepEqual(extractSubtree(target, 2, 1), replaced);
    for (const s of [0, 2, 3]) assert.deepEqual(extractSubtree(target, 2, s), extractSubtree(w, 2, s));
    assert.deepEqual(
      target.tensors['nodes.weight'].subarray(0, 3 * shape.inputWidth),
      w.tensors['nodes.weight'].subarray(0, 3 * shape.inputWidth),
    );
    assert.deepEqual(target.tensors['nodes.bias'].subarray(0, 3), w.tensors['nodes.bias'].subarray(0, 3));
  });

  void it('subtree functions reject bad frozen levels, shards and shapes', () => {
    const shape: FFFShape = { depth: 3, leafWidth: 2, inputWidth: 3, outputWidth: 2, activation: 'relu' };
    const w = randomWeights(shape, 61);
    for (const K of [-1, 3, 4, 1.5, Number.NaN])
      assert.throws(() => extractSubtree(w, K, 0), RangeError, `K=${K}`);
    for (const shard of [-1, 2, 0.5])
      assert.throws(() => extractSubtree(w, 1, shard), RangeError, `shard=${shard}`);
    assert.throws(() => extractSubtree(w, 2, 4), RangeError);
    const subs = [extractSubtree(w, 1, 0), extractSubtree(w, 1, 1)];
    assert.throws(() => assembleSubtrees(w, 1, subs.slice(0, 1)), RangeError);
    assert.throws(() => assembleSubtrees(w, 2, subs), RangeError);
    assert.throws(() => assembleSubtrees(w, 3, subs), RangeError);
    const wrongShape = extractSubtree(randomWeights({ ...shape, leafWidth: 3 }, 62), 1, 0);
    assert.throws(() => assembleSubtrees(w, 1, [subs[0]!, wrongShape]), RangeError);
    assert.throws(() => writeSubtree(cloneWeights(w), 1, 2, subs[0]!), RangeError);
  });

  const phase = (
    name: string,
    epochs: number,
    routing: 'soft' | 'hard',
    train: 'all' | 'leaves',
    hardening: number,
  ): Phase => ({
    name,
    epochs,
    routing,
    hardening,
    lr: 0.01,
    lrDecay: 'constant',
    train,
    leak: 0,
  });

  function separable(n: number, inputWidth: number, seed: number): TrainingSet {
    const x = randomInput(n, inputWidth, seed);
    const y = Int32Array.from({ length: n }, (_, i) => (x[i * inputWidth]! > 0 ? 1 : 0));
    return { n, inputWidth, x, y };
  }

  void it('training does not leak tensors', async () => {
    const shape: FFFShape = { depth: 2, leafWidth: 4, inputWidth: 4, outputWidth: 2, activation: 'relu' };
    const model = new TrainableFFF(randomWeights(shape, 71));
    const data = separable(64, 4, 72);
    const recipe: Recipe = {
      batchSize: 16,
      optimizer: 'adam',
      phases: [phase('soft', 1, 'soft', 'all', 0.1), phase('hard-leaves', 1, 'hard', 'leaves', 0)],
      balance: 0.1,
      balanceLevels: 1,
      seed: 73,
    };
    const before = tf.memory().numTensors;
    const stats = await trainFFF(model, data, recipe, { reportEvery: 1 });
    const after = tf.memory().numTensors;
    assert.equal(stats.steps, 8);
    assert.ok(Number.isFinite(stats.finalLoss));
    assert.equal(after, before, `numTensors grew from ${before} to ${after}`);
    model.dispose();
  });

  void it('trainFFF learns a separable problem', async () => {
    const shape: FFFShape = { depth: 2, leafWidth: 8, inputWidth: 4, outputWidth: 2, activation: 'relu' };
    const model = new TrainableFFF(randomWeights(shape, 81));
    const data = separable(512, 4, 82);
    const test = separable(512, 4, 83);
    const recipe: Recipe = {
      batchSize: 32,
      optimizer: 'adam',
      phases: [phase('soft', 8, 'soft', 'all', 0.05), phase('hard-leaves', 2, 'hard', 'leaves', 0)],
      balance: 0,
      balanceLevels: 0,
      seed: 84,
    };
    const initial = tensorAccuracy(model, test, 'soft');
    await trainFFF(model, data, recipe);
    const soft = tensorAccuracy(model, test, 'soft');
    const hard = tensorAccuracy(model, test, 'hard');
    assert.ok(soft > 0.9, `soft accuracy ${soft} (initial ${initial})`);
    assert.ok(hard > 0.9, `hard accuracy ${hard} (initial ${initial})`);
    model.dispose();
  });
});
