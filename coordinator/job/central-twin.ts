import { trainCentral } from '../../shared/central-training.ts';
import type { DataSplit } from '../../shared/data/dataset.ts';
import { autoBatchSize } from '../../shared/fff/recipe.ts';
import type { JobConfig } from './config.ts';

export interface CentralTwinResult {
  readonly hardTestAcc: number;
  readonly wallSeconds: number;
  readonly epochs: number;
  readonly batch: number;
}

/** Epochs of the central twin: the job's pretraining plus its per-shard budget. */
export const centralTwinEpochs = (config: JobConfig): number => config.pretrain.epochs + config.shard_epochs;

/** The batch `arbor train` would pick for the twin (or the job's own, if it fixes one). */
export const centralTwinBatch = (config: JobConfig, trainSamples: number): number =>
  config.batch ?? autoBatchSize(trainSamples, centralTwinEpochs(config));

/**
 * What `arbor train` reaches with the same model and budget in one process: the reference
 * every distributed run is judged against.
 */
export async function trainCentralTwin(config: JobConfig, data: DataSplit): Promise<CentralTwinResult> {
  const started = performance.now();
  const epochs = centralTwinEpochs(config);
  const batch = centralTwinBatch(config, data.train.n);
  const { result } = await trainCentral(data, {
    depth: config.depth,
    leafWidth: config.leaf,
    activation: config.activation,
    epochs,
    batchSize: batch,
    lr: config.lr,
    optimizer: config.optimizer,
    hardening: config.hardening,
    leak: config.leak,
    balance: config.pretrain.balance,
    frozenLevels: config.frozen,
    seed: config.seed,
  });
  return {
    hardTestAcc: result.hard_test_acc,
    wallSeconds: (performance.now() - started) / 1000,
    epochs,
    batch,
  };
}
