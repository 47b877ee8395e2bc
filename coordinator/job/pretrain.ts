import type { Dataset } from '../../shared/data/dataset.ts';
import { subset } from '../../shared/data/dataset.ts';
import { initWeights } from '../../shared/fff/init.ts';
import { autoBatchSize } from '../../shared/fff/recipe.ts';
import { TrainableFFF } from '../../shared/fff/soft-model.ts';
import { type StepReport, trainFFF } from '../../shared/fff/trainer.ts';
import { type FFFShape, type FFFWeights, nodeCount } from '../../shared/fff/weights.ts';
import { createRng, shuffleInPlace } from '../../shared/random.ts';
import type { JobConfig } from './config.ts';
import { pretrainingRecipe } from './pretrain-recipe.ts';
import { pretrainLevels } from './pretrain-levels.ts';

export function treeShape(config: JobConfig, train: Dataset): FFFShape {
  return {
    depth: config.depth,
    leafWidth: config.leaf,
    inputWidth: train.inputWidth,
    outputWidth: train.classes,
    activation: config.activation,
  };
}

/**
 * 'auto': the depth-K tree up to K=4, where it routed as well and scored best on the demo;
 * level by level beyond, where a tree with 2^K temporary leaves costs minutes (BENCHMARKS.md).
 */
export function pretrainMode(config: JobConfig): Exclude<JobConfig['pretrain']['mode'], 'auto'> {
  const { mode } = config.pretrain;
  if (mode !== 'auto') return mode;
  return config.frozen <= 4 ? 'top' : 'levels';
}

function pretrainingSample(config: JobConfig, train: Dataset): Dataset {
  if (train.n <= config.pretrain.max_samples) return train;
  const order = Int32Array.from({ length: train.n }, (_, i) => i);
  shuffleInPlace(order, createRng(config.seed ^ 0x9e37));
  return subset(train, order.subarray(0, config.pretrain.max_samples));
}

/**
 * Pretraining: decisions of the top K levels that are confident and balanced (balance
 * term at depth K). 'full' trains the whole tree, so the subtrees start warm; 'top' trains
 * only a depth-K tree with wide temporary leaves, far cheaper, and the subtrees start from
 * their initialisation; 'levels' trains one decision at a time, level by level (cost
 * linear in K). Returns the full tree whose top K levels will be frozen.
 */
export async function pretrainTree(
  config: JobConfig,
  train: Dataset,
  onStep?: (report: StepReport) => void,
): Promise<FFFWeights> {
  const shape = treeShape(config, train);
  const full = initWeights(shape, config.seed);
  const sample = pretrainingSample(config, train);
  const mode = pretrainMode(config);
  if (mode === 'levels') return pretrainLevels(config, full, sample, onStep);
  const trainedShape =
    mode === 'full' ? shape : { ...shape, depth: config.frozen, leafWidth: config.pretrain.leaf };
  const model = new TrainableFFF(mode === 'full' ? full : initWeights(trainedShape, config.seed));
  try {
    const recipe = pretrainingRecipe(config, config.batch ?? autoBatchSize(sample.n, config.pretrain.epochs));
    await trainFFF(model, sample, recipe, { yieldEvery: 8, ...(onStep ? { onStep } : {}) });
    const trained = model.toWeights();
    if (mode === 'full') return trained;
    const frozenNodes = nodeCount(config.frozen);
    full.tensors['nodes.weight'].set(
      trained.tensors['nodes.weight'].subarray(0, frozenNodes * shape.inputWidth),
    );
    full.tensors['nodes.bias'].set(trained.tensors['nodes.bias'].subarray(0, frozenNodes));
    return full;
  } finally {
    model.dispose();
  }
}
