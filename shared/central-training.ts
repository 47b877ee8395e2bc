import { writeFFF } from './checkpoint/fff-file.ts';
import type { DataSplit, Dataset } from './data/dataset.ts';
import { tensorAccuracy } from './fff/evaluate.ts';
import { compileHardInference } from './fff/hard-inference.ts';
import { initWeights } from './fff/init.ts';
import { type RecipeOptions, buildRecipe } from './fff/recipe.ts';
import { TrainableFFF } from './fff/soft-model.ts';
import { type StepReport, trainFFF } from './fff/trainer.ts';
import type { Activation, FFFWeights } from './fff/weights.ts';

export interface CentralTrainingOptions extends RecipeOptions {
  readonly depth: number;
  readonly leafWidth: number;
  readonly activation: Activation;
  readonly out?: string;
  /** Extra metadata for the checkpoint (what it was trained on). */
  readonly outMetadata?: Record<string, string>;
}

export interface CentralTrainingResult {
  readonly hard_test_acc: number;
  readonly soft_test_acc: number;
  readonly samples_per_s: number;
  readonly train_seconds: number;
  readonly epochs: number;
  readonly depth: number;
  readonly leaf: number;
  readonly frozen: number;
  readonly routing_imbalance: number | null;
  readonly shard_sizes: readonly number[] | null;
  readonly checkpoint: string | null;
}

export function hardAccuracy(weights: FFFWeights, data: Dataset): number {
  const predicted = compileHardInference(weights).predictClasses(data.x, data.n);
  let correct = 0;
  for (let i = 0; i < data.n; i++) if (predicted[i] === data.y[i]) correct++;
  return correct / Math.max(1, data.n);
}

/** Samples per shard when the top `levels` decisions route the data. */
export function shardSizes(weights: FFFWeights, data: Dataset, levels: number): number[] {
  const sizes = new Array<number>(2 ** levels).fill(0);
  const shards = compileHardInference(weights).routeToDepth(data.x, data.n, levels);
  for (const shard of shards) sizes[shard] = (sizes[shard] ?? 0) + 1;
  return sizes;
}

/** Largest shard over the ideal size n / 2^K. */
export const imbalance = (sizes: readonly number[]): number =>
  Math.max(...sizes) / (sizes.reduce((a, b) => a + b, 0) / sizes.length);

/** The single-process trainer: `arbor train`, and the central twin of every distributed run. */
export async function trainCentral(
  data: DataSplit,
  options: CentralTrainingOptions,
  onStep?: (report: StepReport) => void,
): Promise<{ result: CentralTrainingResult; weights: FFFWeights }> {
  const shape = {
    depth: options.depth,
    leafWidth: options.leafWidth,
    inputWidth: data.train.inputWidth,
    outputWidth: data.train.classes,
    activation: options.activation,
  };
  const model = new TrainableFFF(initWeights(shape, options.seed));
  try {
    const stats = await trainFFF(model, data.train, buildRecipe(options), onStep ? { onStep } : {});
    const weights = model.toWeights();
    const sizes = options.frozenLevels > 0 ? shardSizes(weights, data.train, options.frozenLevels) : null;
    if (options.out !== undefined) await writeFFF(options.out, weights, options.outMetadata);
    const result: CentralTrainingResult = {
      hard_test_acc: hardAccuracy(weights, data.test),
      soft_test_acc: tensorAccuracy(model, data.test, 'soft'),
      samples_per_s: stats.samplesPerSecond,
      train_seconds: stats.seconds,
      epochs: options.epochs,
      depth: options.depth,
      leaf: options.leafWidth,
      frozen: options.frozenLevels,
      routing_imbalance: sizes ? imbalance(sizes) : null,
      shard_sizes: sizes,
      checkpoint: options.out ?? null,
    };
    return { result, weights };
  } finally {
    model.dispose();
  }
}
