/**
 * Pretraining the top K levels for wide trees: its wall time and how evenly the frozen top
 * routes the training set into 2^K shards, for one pretraining mode against another in the
 * same run.
 */
import type { JobConfig } from '../coordinator/job/config.ts';
import { pretrainTree } from '../coordinator/job/pretrain.ts';
import type { DataSplit } from '../shared/data/dataset.ts';
import { compileHardInference } from '../shared/fff/hard-inference.ts';

export interface PretrainingBenchRow {
  readonly mode: JobConfig['pretrain']['mode'];
  readonly frozen: number;
  readonly pretrain_s: number;
  /** Largest shard over the mean shard. */
  readonly routing_imbalance: number;
  readonly empty_shards: number;
  readonly smallest_shard: number;
}

export async function benchPretraining(
  config: JobConfig,
  data: DataSplit,
  modes: readonly JobConfig['pretrain']['mode'][],
): Promise<{ data: string; rows: PretrainingBenchRow[] }> {
  const rows: PretrainingBenchRow[] = [];
  for (const mode of modes) {
    const started = performance.now();
    const tree = await pretrainTree({ ...config, pretrain: { ...config.pretrain, mode } }, data.train);
    const seconds = (performance.now() - started) / 1000;
    const shardOf = compileHardInference(tree).routeToDepth(data.train.x, data.train.n, config.frozen);
    const sizes = new Array<number>(2 ** config.frozen).fill(0);
    for (const shard of shardOf) sizes[shard]!++;
    rows.push({
      mode,
      frozen: config.frozen,
      pretrain_s: seconds,
      routing_imbalance: Math.max(...sizes) / (data.train.n / sizes.length),
      empty_shards: sizes.filter((n) => n === 0).length,
      smallest_shard: Math.min(...sizes),
    });
  }
  return { data: config.data, rows };
}
