/**
 * A job's blob store over a long run: the same simulated job (real core, store and blobs on
 * a virtual clock) run twice, once with the sweeper collecting blobs nothing needs (the
 * product) and once keeping every blob (the baseline, what the coordinator did before).
 * Reported against one model's bytes and the shard data's, which any job must keep.
 */
import pino from 'pino';
import type { JobConfig } from '../coordinator/job/config.ts';
import { DEFAULT_RETENTION } from '../coordinator/core/upkeep.ts';
import { DEFAULT_SIMULATION, simulate } from '../coordinator/simulate/simulation.ts';
import { DEFAULT_MIX } from '../coordinator/simulate/volunteer-mix.ts';
import { treeShape } from '../coordinator/job/pretrain.ts';
import type { DataSplit } from '../shared/data/dataset.ts';
import { TENSOR_NAMES, zeroWeights } from '../shared/fff/weights.ts';

export interface BlobGrowthRun {
  readonly units: number;
  readonly accepted: number;
  readonly hard_test_acc: number;
  readonly virtual_hours: number;
  readonly peak_mb: number;
  readonly final_mb: number;
  readonly peak_kb_per_unit: number;
}

export interface BlobGrowthResult {
  readonly volunteers: number;
  /** One model's weights (float32), and the training set's samples and labels: the floor any job keeps. */
  readonly model_mb: number;
  readonly train_data_mb: number;
  readonly collected: BlobGrowthRun;
  readonly kept_all: BlobGrowthRun;
  /** collected.peak_mb / kept_all.peak_mb */
  readonly peak_ratio: number;
  readonly final_ratio: number;
}

const MB = 1e6;

async function once(
  config: JobConfig,
  data: DataSplit,
  volunteers: number,
  collect: boolean,
): Promise<BlobGrowthRun> {
  const result = await simulate(
    config,
    data,
    { ...DEFAULT_MIX, volunteers, samplesPerSecond: 20 },
    pino({ level: 'silent' }),
    undefined,
    {
      ...DEFAULT_SIMULATION,
      retention: { ...DEFAULT_RETENTION, blobGraceMs: collect ? DEFAULT_RETENTION.blobGraceMs : Infinity },
    },
  );
  return {
    units: result.units,
    accepted: result.accepted,
    hard_test_acc: result.hard_test_acc,
    virtual_hours: result.virtual_wall_s / 3600,
    peak_mb: result.blob_bytes.peak / MB,
    final_mb: result.blob_bytes.final / MB,
    peak_kb_per_unit: result.blob_bytes.peak / 1000 / Math.max(1, result.units),
  };
}

export async function benchBlobGrowth(
  config: JobConfig,
  data: DataSplit,
  volunteers: number,
): Promise<BlobGrowthResult> {
  const collected = await once(config, data, volunteers, true);
  const keptAll = await once(config, data, volunteers, false);
  const model = zeroWeights(treeShape(config, data.train));
  const modelBytes = TENSOR_NAMES.reduce((sum, name) => sum + model.tensors[name].byteLength, 0);
  return {
    volunteers,
    model_mb: modelBytes / MB,
    train_data_mb: (data.train.x.byteLength + data.train.y.byteLength) / MB,
    collected,
    kept_all: keptAll,
    peak_ratio: collected.peak_mb / keptAll.peak_mb,
    final_ratio: collected.final_mb / keptAll.final_mb,
  };
}
