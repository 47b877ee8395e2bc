/**
 * Level-by-level pretraining of the top: each decision splits the samples that reach it at
 * their median, so a wide top routes evenly whatever the data, and it fills every level.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { parseJobConfig } from '../../coordinator/job/config.ts';
import { pretrainTree, treeShape } from '../../coordinator/job/pretrain.ts';
import { initWeights } from '../../shared/fff/init.ts';
import { selectBackend } from '../../shared/backend.ts';
import { compileHardInference } from '../../shared/fff/hard-inference.ts';
import { nodeCount } from '../../shared/fff/weights.ts';
import { tinyData } from '../helpers/small-job.ts';

before(async () => {
  await selectBackend('wasm');
});

void describe("pretrain.mode 'levels'", () => {
  void it('routes the training set into 2^K shards of equal size, one level at a time', async () => {
    const { train } = tinyData();
    const config = parseJobConfig({
      data: 'tiny',
      depth: 5,
      frozen: 4,
      leaf: 4,
      pretrain: { mode: 'levels', epochs: 2, leaf: 4 },
    });
    const steps: string[] = [];
    const tree = await pretrainTree(config, train, (report) => steps.push(report.phase));
    assert.deepEqual(
      [...new Set(steps)],
      [0, 1, 2, 3].map((k) => `pretrain-level-${k}`),
    );
    assert.equal(steps.length, nodeCount(4), 'one report per decision');
    const sizes = new Array<number>(16).fill(0);
    for (const shard of compileHardInference(tree).routeToDepth(train.x, train.n, 4)) sizes[shard]!++;
    assert.deepEqual(
      sizes,
      new Array<number>(16).fill(train.n / 16),
      `400 samples in 16 shards: ${sizes.join(',')}`,
    );
    const initial = initWeights(treeShape(config, train), config.seed);
    assert.deepEqual(
      tree.tensors['nodes.bias'].subarray(nodeCount(4)),
      initial.tensors['nodes.bias'].subarray(nodeCount(4)),
      'the levels below the top keep their initialisation',
    );
  });
});
