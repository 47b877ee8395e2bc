/**
 * Distributed against central: the same FFF trained by a local cluster (a coordinator and
 * N worker processes on loopback) and by one process (`arbor train`, the central twin),
 * with the communication bill of both.
 */
import { rmSync } from 'node:fs';
import type { Logger } from 'pino';
import type { JobConfig } from '../coordinator/job/config.ts';
import { runLocalCluster } from '../cli/local-cluster.ts';
import { dataParallelBytesPerSample } from '../coordinator/read/traffic.ts';
import { centralTwinBatch, centralTwinEpochs, trainCentralTwin } from '../coordinator/job/central-twin.ts';
import type { DataSplit } from '../shared/data/dataset.ts';
import { type TopActivity, topActivity } from '../coordinator/top/top-activity.ts';
import { type CurvePoint, timeToAccuracy } from '../coordinator/simulate/accuracy-curve.ts';
import { type CrowdTime, crowdTimeOf } from '../coordinator/read/crowd-time.ts';

export interface DistributedBenchResult {
  readonly data: string;
  readonly depth: number;
  readonly frozen: number;
  readonly leaf: number;
  readonly workers: number;
  /** Units merged per worker process, most first: every worker should have some. */
  readonly units_per_worker: readonly number[];
  readonly epochs: { readonly pretrain: number; readonly shard: number; readonly central: number };
  readonly dist_hard_test_acc: number;
  readonly central_hard_test_acc: number | null;
  readonly dist_wall_s: number;
  readonly central_wall_s: number | null;
  readonly speedup: number | null;
  /** Model bytes (base weights down, deltas up) that crossed the sockets per trained sample. */
  readonly bytes_per_sample: number;
  /** One ring all-reduce of the full model per step, 2(N-1)/N·|θ|·4 bytes, per sample of the step. */
  readonly dp_bytes_per_sample: number;
  readonly comm_reduction: number;
  readonly data_bytes_per_sample: number;
  readonly routing_imbalance: number;
  readonly shard_sizes: readonly number[];
  /** The top: frozen, or slow with its updates and re-routes. */
  readonly top: JobConfig['top']['mode'];
  readonly top_activity: Omit<TopActivity, 'last_update'> | null;
  readonly final_model: string;
  /** Hard test accuracy at each evaluation, seconds since training began. */
  readonly curve: readonly CurvePoint[];
  /** Seconds from the start of training until an evaluation first reached each target. */
  readonly time_to_acc: Readonly<Record<string, number | null>>;
  /** How the worker processes spent their connected time (CrowdTime). */
  readonly crowd: CrowdTime;
}

export interface DistributedBenchOptions {
  readonly config: JobConfig;
  readonly data: DataSplit;
  readonly workers: number;
  readonly central: boolean;
  readonly log: Logger;
  readonly onListening?: (url: string) => void;
  /** Accuracies whose time of first reaching the result reports. */
  readonly targets?: readonly number[];
}

export async function benchDistributed(options: DistributedBenchOptions): Promise<DistributedBenchResult> {
  const { config, data, workers } = options;
  const cluster = await runLocalCluster({
    config,
    workers,
    data,
    log: options.log,
    ...(options.onListening ? { onListening: options.onListening } : {}),
  });
  const shards = cluster.coordinator.store.listShards();
  const counters = cluster.coordinator.store.counters();
  const top = topActivity(cluster.coordinator.store);
  const unitsPerWorker = cluster.coordinator.store
    .listWorkers()
    .map((w) => w.unitsDone)
    .sort((a, b) => b - a);
  const events = cluster.coordinator.store.eventsAfter(0, 1_000_000);
  const endMs = cluster.final.atMs;
  const trainingFrom =
    events.find((e) => e.kind === 'phase' && (e.data as { phase?: string }).phase === 'training')?.atMs ?? 0;
  const curve = cluster.coordinator.store
    .listEvals()
    .map((e) => ({ t_s: (e.atMs - trainingFrom) / 1000, acc: e.hardTestAcc }));
  await cluster.coordinator.close();
  rmSync(cluster.dir, { recursive: true, force: true });
  const trained = shards.reduce((sum, s) => sum + s.trainedSamples, 0);
  const sizes = shards.map((s) => s.samples);
  const ideal = sizes.reduce((a, b) => a + b, 0) / sizes.length;
  const modelBytes = (counters['model_bytes_out'] ?? 0) + (counters['model_bytes_in'] ?? 0);

  const batch = centralTwinBatch(config, data.train.n);
  const central = options.central ? await trainCentralTwin(config, data) : null;
  const dpBytesPerSample = dataParallelBytesPerSample(cluster.coordinator.job.shape, workers, batch);
  const bytesPerSample = modelBytes / Math.max(1, trained);
  return {
    data: config.data,
    depth: config.depth,
    frozen: config.frozen,
    leaf: config.leaf,
    workers,
    units_per_worker: unitsPerWorker,
    epochs: {
      pretrain: config.pretrain.epochs,
      shard: config.shard_epochs,
      central: centralTwinEpochs(config),
    },
    dist_hard_test_acc: cluster.final.hardTestAcc,
    central_hard_test_acc: central?.hardTestAcc ?? null,
    dist_wall_s: cluster.wallSeconds,
    central_wall_s: central?.wallSeconds ?? null,
    speedup: central ? central.wallSeconds / cluster.wallSeconds : null,
    bytes_per_sample: bytesPerSample,
    dp_bytes_per_sample: dpBytesPerSample,
    comm_reduction: dpBytesPerSample / Math.max(1e-12, bytesPerSample),
    data_bytes_per_sample: (counters['data_bytes_out'] ?? 0) / Math.max(1, trained),
    routing_imbalance: Math.max(...sizes) / ideal,
    shard_sizes: sizes,
    top: config.top.mode,
    top_activity: top
      ? {
          version: top.version,
          routing_version: top.routing_version,
          updates: top.updates,
          dropped: top.dropped,
          reroutes: top.reroutes,
        }
      : null,
    final_model: cluster.coordinator.job.finalModelPath,
    curve,
    time_to_acc: timeToAccuracy(curve, options.targets ?? []),
    crowd: crowdTimeOf(events, endMs),
  };
}
