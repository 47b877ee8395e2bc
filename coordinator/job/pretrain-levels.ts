import type { Dataset } from '../../shared/data/dataset.ts';
import { subset } from '../../shared/data/dataset.ts';
import { compileHardInference } from '../../shared/fff/hard-inference.ts';
import { initWeights } from '../../shared/fff/init.ts';
import { autoBatchSize } from '../../shared/fff/recipe.ts';
import { TrainableFFF } from '../../shared/fff/soft-model.ts';
import { type StepReport, trainFFF } from '../../shared/fff/trainer.ts';
import type { FFFShape, FFFWeights } from '../../shared/fff/weights.ts';
import type { JobConfig } from './config.ts';
import { pretrainingRecipe } from './pretrain-recipe.ts';

/** A decision and two small leaves are cheap per sample: larger minibatches, fewer steps. */
const STUMP_BATCH = 256;

/** The median of w·x over the samples: the threshold that splits them in half. */
function medianProjection(weight: Float32Array, data: Dataset): number {
  const projections = new Float64Array(data.n);
  for (let i = 0; i < data.n; i++) {
    let sum = 0;
    for (let j = 0; j < data.inputWidth; j++) sum += weight[j]! * data.x[i * data.inputWidth + j]!;
    projections[i] = sum;
  }
  projections.sort();
  const mid = data.n >> 1;
  return data.n % 2 === 1 ? projections[mid]! : (projections[mid - 1]! + projections[mid]!) / 2;
}

/**
 * Trains one decision on the samples that reach it: a depth-1 tree with two temporary
 * leaves learns the direction; the threshold is then set at the median, so the decision
 * halves its samples exactly and a tree of any width stays balanced.
 */
async function trainSplit(
  config: JobConfig,
  shape: FFFShape,
  data: Dataset,
  seed: number,
): Promise<{ weight: Float32Array; bias: number }> {
  const stump = initWeights({ ...shape, depth: 1, leafWidth: config.pretrain.leaf }, seed);
  const model = new TrainableFFF(stump);
  try {
    const batch = config.batch ?? Math.max(STUMP_BATCH, autoBatchSize(data.n, config.pretrain.epochs));
    await trainFFF(model, data, { ...pretrainingRecipe(config, batch), balanceLevels: 1, seed });
    const weight = model.toWeights().tensors['nodes.weight'].slice(0, shape.inputWidth);
    return { weight, bias: -medianProjection(weight, data) };
  } finally {
    model.dispose();
  }
}

/**
 * Level by level, hard: each decision of level k is trained on exactly the samples the
 * trained levels above route to it, and split at their median. Every level
 * sees each sample once a pretraining epoch through a two-leaf model, so the cost grows with
 * K, not with 2^K as when a depth-K tree with 2^K temporary leaves is trained softly.
 */
export async function pretrainLevels(
  config: JobConfig,
  full: FFFWeights,
  sample: Dataset,
  onStep?: (report: StepReport) => void,
): Promise<FFFWeights> {
  const { shape } = full;
  const nodeWeights = full.tensors['nodes.weight'];
  const nodeBiases = full.tensors['nodes.bias'];
  for (let level = 0; level < config.frozen; level++) {
    const reached =
      level === 0
        ? new Int32Array(sample.n)
        : compileHardInference(full).routeToDepth(sample.x, sample.n, level);
    const members: number[][] = Array.from({ length: 2 ** level }, () => []);
    reached.forEach((node, row) => members[node]!.push(row));
    for (const [j, rows] of members.entries()) {
      const node = 2 ** level - 1 + j;
      if (rows.length >= 2) {
        const split = await trainSplit(
          config,
          shape,
          subset(sample, Int32Array.from(rows)),
          config.seed + node,
        );
        nodeWeights.set(split.weight, node * shape.inputWidth);
        nodeBiases[node] = split.bias;
      }
      onStep?.({
        phase: `pretrain-level-${level}`,
        epoch: level,
        totalEpochs: config.frozen,
        stepInEpoch: j + 1,
        stepsPerEpoch: members.length,
        samplesSeen: rows.length,
        loss: Number.NaN,
      });
    }
  }
  return full;
}
