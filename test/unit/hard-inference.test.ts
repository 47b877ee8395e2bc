import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  compileHardInference,
  hardLogitsReference,
  hardRouteReference,
  type HardInferenceModel,
  wasmSimdSupported,
} from '../../shared/fff/hard-inference.ts';
import {
  type Activation,
  type FFFShape,
  type FFFWeights,
  TENSOR_NAMES,
  zeroWeights,
} from '../../shared/fff/weights.ts';
import { createRng, uniformFill } from '../../shared/random.ts';
import { initWeights } from '../../shared/fff/init.ts';

const KERNELS = wasmSimdSupported() ? (['wasm', 'js'] as const) : (['js'] as const);

const randomWeights = initWeights;

function randomInput(n: number, width: number, seed: number): Float32Array {
  const x = new Float32Array(n * width);
  uniformFill(x, 1, createRng(seed));
  return x;
}

/**
 * Manual path computation, independent of the module: leaf index per sample, and the
 * smallest |w·x+b| met on the way (samples with a near tie may legitimately be routed
 * differently by float32 kernels, so comparisons skip them).
 */
function manualPaths(w: FFFWeights, x: Float32Array, n: number): { leaf: number[]; margin: number[] } {
  const { depth, inputWidth: I } = w.shape;
  const leaf: number[] = [];
  const margin: number[] = [];
  for (let s = 0; s < n; s++) {
    let node = 0;
    let m = Infinity;
    const row = Array.from(x.subarray(s * I, (s + 1) * I));
    for (let d = 0; d < depth; d++) {
      const weights = Array.from(w.tensors['nodes.weight'].subarray(node * I, (node + 1) * I));
      const z = weights.reduce((acc, wi, i) => acc + wi * row[i]!, w.tensors['nodes.bias'][node]!);
      m = Math.min(m, Math.abs(z));
      node = z > 0 ? 2 * node + 2 : 2 * node + 1;
    }
    leaf.push(node - (2 ** depth - 1));
    margin.push(m);
  }
  return { leaf, margin };
}

const TIE = 1e-4;

function maxAbsDiff(a: Float32Array, b: Float32Array, O: number, keep: (s: number) => boolean): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    if (!keep(Math.floor(i / O))) continue;
    max = Math.max(max, Math.abs(a[i]! - b[i]!));
  }
  return max;
}

const CONFIGS: [depth: number, leaf: number, input: number, output: number, act: Activation][] = [
  [0, 3, 5, 2, 'relu'],
  [1, 1, 1, 1, 'relu'],
  [1, 8, 784, 10, 'tanh'],
  [2, 5, 13, 3, 'tanh'],
  [3, 7, 33, 1, 'relu'],
  [4, 8, 784, 10, 'relu'],
  [5, 16, 100, 10, 'tanh'],
  [6, 3, 17, 7, 'relu'],
  [9, 8, 784, 10, 'relu'],
];

void describe('hard inference', () => {
  for (const [depth, leafWidth, inputWidth, outputWidth, activation] of CONFIGS) {
    const shape: FFFShape = { depth, leafWidth, inputWidth, outputWidth, activation };
    const label = `D=${depth} L=${leafWidth} I=${inputWidth} O=${outputWidth} ${activation}`;
    void it(`matches the reference and the manual routing: ${label}`, () => {
      const w = randomWeights(shape, 100 + depth * 7 + leafWidth);
      const n = depth >= 9 ? 700 : 301;
      const x = randomInput(n, inputWidth, 5 + depth);
      const { leaf, margin } = manualPaths(w, x, n);
      const keep = (s: number): boolean => margin[s]! > TIE;
      const ties = margin.filter((m) => m <= TIE).length;
      assert.ok(ties < n / 50, `too many near ties (${ties})`);
      assert.deepEqual(Array.from(hardRouteReference(w, x, n)), leaf);
      const ref = hardLogitsReference(w, x, n);
      for (const kernel of KERNELS) {
        // a small chunk size also exercises chunking with a ragged last chunk
        for (const chunkSize of [8192, 97]) {
          const model = compileHardInference(w, { kernel, chunkSize });
          assert.equal(model.kernel, kernel === 'wasm' ? 'wasm-simd' : 'js');
          const logits = model.predictLogits(x, n);
          assert.equal(logits.length, n * outputWidth);
          const diff = maxAbsDiff(logits, ref, outputWidth, keep);
          assert.ok(diff < 1e-4, `${kernel} chunk ${chunkSize}: max abs diff ${diff}`);
          const route = model.route(x, n);
          for (let s = 0; s < n; s++) if (keep(s)) assert.equal(route[s], leaf[s], `${kernel}: sample ${s}`);
        }
      }
    });
  }

  void it('routes a hand-built tree as computed by hand', () => {
    // D=2, I=2. Root: right iff x0 > 0. Node 1: right iff x1 > 0. Node 2: right iff x1 < 0.5.
    const w = zeroWeights({ depth: 2, leafWidth: 1, inputWidth: 2, outputWidth: 1, activation: 'relu' });
    w.tensors['nodes.weight'].set([1, 0, 0, 1, 0, -1]);
    w.tensors['nodes.bias'].set([0, 0, 0.5]);
    w.tensors['leaves.b2'].set([10, 11, 12, 13]);
    const x = new Float32Array([-1, -1, -1, 1, 1, 1, 1, 0, 0, 0]);
    // (-1,-1): root left -> node1, x1<=0 left -> node3 = leaf 0
    // (-1, 1): node1 right -> node4 = leaf 1
    // ( 1, 1): node2: -1+0.5 <= 0 left -> node5 = leaf 2
    // ( 1, 0): node2: 0.5 > 0 right -> node6 = leaf 3
    // ( 0, 0): root 0 is not > 0 -> left; node1 0 not > 0 -> left -> leaf 0
    const expected = [0, 1, 2, 3, 0];
    for (const kernel of KERNELS) {
      const model = compileHardInference(w, { kernel });
      assert.deepEqual(Array.from(model.route(x, 5)), expected);
      assert.deepEqual(Array.from(model.routeToDepth(x, 5, 1)), [0, 0, 1, 1, 0]);
      assert.deepEqual(Array.from(model.predictLogits(x, 5)), [10, 11, 12, 13, 10]);
    }
  });

  void it('includes b2 (per leaf) in the logits', () => {
    const shape: FFFShape = { depth: 4, leafWidth: 8, inputWidth: 50, outputWidth: 6, activation: 'relu' };
    const w = randomWeights(shape, 9);
    const n = 200;
    const x = randomInput(n, shape.inputWidth, 10);
    const withBias = structuredClone(w);
    const b2 = withBias.tensors['leaves.b2'];
    for (let leaf = 0; leaf < 16; leaf++) for (let o = 0; o < 6; o++) b2[leaf * 6 + o] = 1000 + 10 * leaf + o;
    w.tensors['leaves.b2'].fill(0);
    for (const kernel of KERNELS) {
      const plain = compileHardInference(w, { kernel }).predictLogits(x, n);
      const model = compileHardInference(withBias, { kernel });
      const biased = model.predictLogits(x, n);
      const route = model.route(x, n);
      for (let s = 0; s < n; s++) {
        for (let o = 0; o < 6; o++) {
          const expected = 1000 + 10 * route[s]! + o;
          assert.ok(
            Math.abs(biased[s * 6 + o]! - plain[s * 6 + o]! - expected) < 1e-3,
            `${kernel} s=${s} o=${o}`,
          );
          assert.ok(biased[s * 6 + o]! > 900);
        }
      }
    }
  });

  void it('routeToDepth(levels) equals route >> (D - levels) for every level', () => {
    const shape: FFFShape = { depth: 7, leafWidth: 4, inputWidth: 40, outputWidth: 3, activation: 'tanh' };
    const w = randomWeights(shape, 21);
    const n = 500;
    const x = randomInput(n, shape.inputWidth, 22);
    for (const kernel of KERNELS) {
      const model = compileHardInference(w, { kernel, chunkSize: 128 });
      const route = model.route(x, n);
      const used = new Set(route);
      assert.ok(used.size > 20, 'random routing should reach many leaves');
      for (let levels = 0; levels <= shape.depth; levels++) {
        const shards = model.routeToDepth(x, n, levels);
        for (let s = 0; s < n; s++) assert.equal(shards[s], route[s]! >> (shape.depth - levels));
      }
    }
  });

  void it('predictClasses is the argmax of the logits', () => {
    const shape: FFFShape = { depth: 3, leafWidth: 8, inputWidth: 30, outputWidth: 10, activation: 'relu' };
    const w = randomWeights(shape, 31);
    const n = 300;
    const x = randomInput(n, 30, 32);
    for (const kernel of KERNELS) {
      const model = compileHardInference(w, { kernel });
      const logits = model.predictLogits(x, n);
      const classes = model.predictClasses(x, n);
      for (let s = 0; s < n; s++) {
        const row = Array.from(logits.subarray(s * 10, s * 10 + 10));
        assert.equal(classes[s], row.indexOf(Math.max(...row)));
      }
    }
  });

  void it(
    'the wasm and JS engines agree, across calls of growing and shrinking size',
    { skip: !wasmSimdSupported() },
    () => {
      const shape: FFFShape = { depth: 6, leafWidth: 12, inputWidth: 90, outputWidth: 5, activation: 'relu' };
      const w = randomWeights(shape, 41);
      const fast = compileHardInference(w, { kernel: 'wasm', chunkSize: 1000 });
      const slow = compileHardInference(w, { kernel: 'js', chunkSize: 1000 });
      for (const [n, seed] of [
        [10, 1],
        [2500, 2],
        [3, 3],
        [0, 4],
        [1000, 5],
      ] as const) {
        const x = randomInput(n, shape.inputWidth, seed);
        const { margin } = manualPaths(w, x, n);
        const keep = (s: number): boolean => margin[s]! > TIE;
        const a = fast.predictLogits(x, n);
        const b = slow.predictLogits(x, n);
        assert.ok(maxAbsDiff(a, b, 5, keep) < 1e-4, `n=${n}`);
        assert.ok(maxAbsDiff(a, hardLogitsReference(w, x, n), 5, keep) < 1e-4, `n=${n} vs reference`);
        const ra = fast.route(x, n);
        const rb = slow.route(x, n);
        for (let s = 0; s < n; s++) if (keep(s)) assert.equal(ra[s], rb[s]);
      }
    },
  );

  void it('is a snapshot of the weights, and validates its inputs', () => {
    const shape: FFFShape = { depth: 2, leafWidth: 4, inputWidth: 6, outputWidth: 2, activation: 'relu' };
    const w = randomWeights(shape, 51);
    const x = randomInput(4, 6, 52);
    for (const kernel of KERNELS) {
      const own = structuredClone(w);
      const model: HardInferenceModel = compileHardInference(own, { kernel });
      const before = model.predictLogits(x, 4);
      for (const name of TENSOR_NAMES) own.tensors[name].fill(99);
      assert.deepEqual(model.predictLogits(x, 4), before);
      assert.throws(() => model.predictLogits(x, 5), RangeError);
      assert.throws(() => model.routeToDepth(x, 4, 3), RangeError);
      assert.throws(() => model.routeToDepth(x, 4, -1), RangeError);
      assert.throws(() => model.route(x, 1.5), RangeError);
    }
    const bad = structuredClone(w);
    (bad.tensors as Record<string, Float32Array>)['leaves.w1'] = new Float32Array(3);
    assert.throws(() => compileHardInference(bad), RangeError);
  });
});
