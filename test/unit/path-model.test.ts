import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { siblingOutputs } from '../../coordinator/top/sibling-outputs.ts';
import { selectBackend } from '../../shared/backend.ts';
import { initWeights } from '../../shared/fff/init.ts';
import { TrainablePath, pathForward, pathOf } from '../../shared/fff/path-model.ts';
import { TrainableFFF, crossEntropy, forward } from '../../shared/fff/soft-model.ts';
import { trainFFF } from '../../shared/fff/trainer.ts';
import { compileHardInference } from '../../shared/fff/hard-inference.ts';
import { routeThroughTop, topOfTree } from '../../shared/fff/top-blob.ts';
import { extractSubtree } from '../../shared/fff/subtree.ts';
import type { FFFShape } from '../../shared/fff/weights.ts';
import { createRng, uniformFill } from '../../shared/random.ts';

const shape: FFFShape = { depth: 4, leafWidth: 3, inputWidth: 6, outputWidth: 4, activation: 'relu' };
const K = 2;
const n = 24;

function sample(seed: number): { x: Float32Array; y: Int32Array } {
  const x = new Float32Array(n * shape.inputWidth);
  uniformFill(x, 1.5, createRng(seed));
  const rng = createRng(seed + 1);
  return { x, y: Int32Array.from({ length: n }, () => Math.floor(rng() * shape.outputWidth)) };
}

function maxDiff(a: Float32Array | number[], b: Float32Array | number[]): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

void describe('path model (slow top)', () => {
  before(async () => {
    await selectBackend('cpu');
  });

  void it('lists the path nodes and directions of every shard', () => {
    assert.deepEqual(pathOf(0, 3), { nodes: [0, 1, 3], directions: [0, 0, 0] });
    assert.deepEqual(pathOf(5, 3), { nodes: [0, 2, 5], directions: [1, 0, 1] });
    assert.deepEqual(pathOf(3, 2), { nodes: [0, 2], directions: [1, 1] });
  });

  for (const shard of [0, 1, 2, 3]) {
    void it(`gives the full tree's output and gradients for shard ${shard} from its path and cached siblings`, () => {
      const tree = initWeights(shape, 11 + shard);
      // Sharper decisions than at init, so that the path's terms differ in size.
      tree.tensors['nodes.weight'].forEach((v, i, a) => (a[i] = v * 6));
      const { x, y } = sample(100 + shard);
      const { nodes, directions } = pathOf(shard, K);
      const I = shape.inputWidth;

      const full = new TrainableFFF(tree);
      const fullGrads = tf.tidy(() => {
        const xs = tf.tensor2d(x, [n, I]);
        const { value, grads } = tf.variableGrads(() =>
          crossEntropy(forward(full, xs, { routing: 'soft' }).logits, tf.tensor1d(y, 'int32')),
        );
        return {
          loss: value.dataSync()[0]!,
          nodes: grads[full.vars['nodes.weight'].name]!.arraySync() as number[][],
          bias: grads[full.vars['nodes.bias'].name]!.arraySync() as number[],
          w1: grads[full.vars['leaves.w1'].name]!.dataSync().slice() as Float32Array,
        };
      });
      full.dispose();

      const sub = new TrainableFFF(extractSubtree(tree, K, shard));
      const path = new TrainablePath({
        levels: K,
        directions,
        weight: Float32Array.from(
          nodes.flatMap((node) => [...tree.tensors['nodes.weight'].subarray(node * I, (node + 1) * I)]),
        ),
        bias: Float32Array.from(nodes.map((node) => tree.tensors['nodes.bias'][node]!)),
        onShare: new Float32Array(K).fill(0.5),
        balance: 0,
      });
      const siblings = siblingOutputs(tree, K, shard, x, n);
      const pathGrads = tf.tidy(() => {
        const xs = tf.tensor2d(x, [n, I]);
        const { value, grads } = tf.variableGrads(() => {
          const own = forward(sub, xs, { routing: 'soft' }).logits;
          const along = pathForward(path, xs, own, tf.tensor2d(siblings, [n, K * shape.outputWidth]));
          return crossEntropy(along.logits, tf.tensor1d(y, 'int32'));
        });
        return {
          loss: value.dataSync()[0]!,
          weight: grads[path.weight.name]!.arraySync() as number[][],
          bias: grads[path.bias.name]!.arraySync() as number[],
          w1: grads[sub.vars['leaves.w1'].name]!.dataSync().slice() as Float32Array,
        };
      });
      sub.dispose();
      path.dispose();

      assert.ok(
        Math.abs(fullGrads.loss - pathGrads.loss) < 1e-5,
        `loss ${fullGrads.loss} vs ${pathGrads.loss}`,
      );
      nodes.forEach((node, k) => {
        const scale = Math.max(1e-3, ...fullGrads.nodes[node]!.map(Math.abs));
        assert.ok(
          maxDiff(fullGrads.nodes[node]!, pathGrads.weight[k]!) < 1e-4 * scale + 1e-6,
          `node ${node} weight`,
        );
        assert.ok(Math.abs(fullGrads.bias[node]! - pathGrads.bias[k]!) < 1e-5, `node ${node} bias`);
        assert.ok(Math.abs(fullGrads.bias[node]!) > 1e-6, `node ${node} has a gradient to compare`);
      });
      const leaves = 2 ** (shape.depth - K);
      const per = I * shape.leafWidth;
      const own = fullGrads.w1.subarray(shard * leaves * per, (shard + 1) * leaves * per);
      assert.ok(maxDiff(own, pathGrads.w1) < 1e-5, 'subtree leaf gradients');
    });
  }

  void it("trains a central twin's top frozen (rate 0) or slow (a share of each step)", async () => {
    const { x, y } = sample(9);
    const data = { n, inputWidth: shape.inputWidth, x, y };
    const phases = [
      {
        name: 'soft',
        epochs: 2,
        routing: 'soft',
        hardening: 1,
        lr: 0.05,
        lrDecay: 'constant',
        train: 'all',
        leak: 0,
      },
    ] as const;
    const topOf = async (top?: { levels: number; fromEpoch: number; rate: number }) => {
      const model = new TrainableFFF(initWeights(shape, 5));
      const recipe = {
        batchSize: 8,
        optimizer: 'adam' as const,
        phases,
        balance: 0,
        balanceLevels: 0,
        seed: 3,
      };
      await trainFFF(model, data, top ? { ...recipe, top } : recipe);
      const trained = model.toWeights();
      model.dispose();
      return {
        w: trained.tensors['nodes.weight'].slice(0, 3 * shape.inputWidth),
        b: trained.tensors['nodes.bias'].slice(0, 3),
      };
    };
    const init = initWeights(shape, 5);
    const start = init.tensors['nodes.weight'].slice(0, 3 * shape.inputWidth);
    const free = await topOf();
    const frozen = await topOf({ levels: 2, fromEpoch: 0, rate: 0 });
    const slow = await topOf({ levels: 2, fromEpoch: 0, rate: 0.2 });
    assert.equal(maxDiff(frozen.w, start), 0, 'a frozen top does not move');
    const moved = (w: Float32Array) => maxDiff(w, start);
    assert.ok(moved(free.w) > 0.05, `the free top moves (${moved(free.w)})`);
    assert.ok(
      moved(slow.w) > 0 && moved(slow.w) < 0.5 * moved(free.w),
      `the slow top moves less: ${moved(slow.w)} vs ${moved(free.w)}`,
    );
  });

  void it('routes through the top as the served model does', () => {
    const tree = initWeights(shape, 21);
    const many = 400;
    const x = new Float32Array(many * shape.inputWidth);
    uniformFill(x, 2, createRng(22));
    const served = compileHardInference(tree).routeToDepth(x, many, K);
    const routed = routeThroughTop(topOfTree(tree, K), x, many);
    assert.deepEqual([...routed], [...served]);
    assert.ok(new Set(routed).size > 1, 'the samples go more than one way');
  });

  void it('pushes an overfull side away: the balance gradient lowers the on-path probability', () => {
    const path = new TrainablePath({
      levels: 1,
      directions: [1],
      weight: new Float32Array(shape.inputWidth),
      bias: new Float32Array(1),
      onShare: Float32Array.of(0.8),
      balance: 1,
    });
    const grad = tf.tidy(() => {
      const xs = tf.tensor2d(sample(7).x, [n, shape.inputWidth]);
      const { grads } = tf.variableGrads(
        () => pathForward(path, xs, tf.zeros([n, 4]), tf.zeros([n, 4])).balance,
      );
      return grads[path.bias.name]!.dataSync()[0]!;
    });
    path.dispose();
    assert.ok(grad > 0, `descending must lower the right-going bias (gradient ${grad})`);
  });
});
