/** The dashboard's JSON views, built from the store and the running job on each request. */
import type { Series, ShardInfo, Shards, Status, Workers } from '../../proto/dashboard.ts';
import type { RunningCoordinator } from '../coordinator.ts';
import { centralTwinBatch } from '../job/central-twin.ts';
import type { ResultRow, Shard } from '../store/store.ts';
import { dataParallelBytesPerSample } from '../traffic.ts';
import type { ShardGallery } from './shard-gallery.ts';

/** Training rate since the first accepted result, for the time-left estimate. */
function etaSeconds(accepted: readonly ResultRow[], trained: number, budget: number): number | null {
  if (accepted.length < 2 || trained >= budget) return trained >= budget ? 0 : null;
  const first = accepted[0]!.receivedMs;
  const last = accepted[accepted.length - 1]!.receivedMs;
  const rate = trained / Math.max(1, last - first + 1);
  return rate > 0 ? (budget - trained) / rate / 1000 : null;
}

const cappedTrained = (shards: readonly Shard[]): number =>
  shards.reduce((sum, s) => sum + Math.min(s.trainedSamples, s.budgetSamples), 0);

export interface StatusOptions {
  readonly centralHardTestAcc?: number;
}

export function statusView(coordinator: RunningCoordinator, options: StatusOptions = {}): Status {
  const { store, config, job } = coordinator;
  const shards = store.listShards();
  const trained = cappedTrained(shards);
  const budget = shards.reduce((sum, s) => sum + s.budgetSamples, 0);
  const results = store.listResults();
  const acceptedResults = results.filter((r) => r.status === 'accepted');
  const accepted = acceptedResults.length;
  const evals = store.listEvals();
  const latest = evals[evals.length - 1];
  const counters = store.counters();
  const modelBytes = (counters['model_bytes_out'] ?? 0) + (counters['model_bytes_in'] ?? 0);
  const samplesTrained = shards.reduce((sum, s) => sum + s.trainedSamples, 0);
  const bytesPerSample = samplesTrained > 0 ? modelBytes / samplesTrained : 0;
  const routed = shards.reduce((sum, s) => sum + s.samples, 0);
  const dp = dataParallelBytesPerSample(
    job.shape,
    coordinator.connectedWorkers(),
    centralTwinBatch(config, Math.max(1, routed)),
  );
  return {
    phase: job.phase,
    data: config.data,
    model: { depth: config.depth, frozen: config.frozen, leaf: config.leaf },
    started_ms: store.getJob()?.createdMs ?? 0,
    now_ms: Date.now(),
    progress: {
      trained_samples: trained,
      budget_samples: budget,
      fraction: budget > 0 ? trained / budget : 0,
      eta_s: job.phase === 'done' ? 0 : etaSeconds(acceptedResults, trained, budget),
    },
    accuracy: {
      hard_test_acc: latest?.hardTestAcc ?? null,
      val_loss: latest?.valLoss ?? null,
      central_hard_test_acc: options.centralHardTestAcc ?? null,
    },
    workers: { connected: coordinator.connectedWorkers(), known: store.listWorkers().length },
    units: store.unitsByState(),
    results: { accepted, rejected: results.length - accepted },
    traffic: {
      model_bytes: modelBytes,
      data_bytes: counters['data_bytes_out'] ?? 0,
      bytes_per_sample: bytesPerSample,
      dp_bytes_per_sample: dp,
      comm_reduction: bytesPerSample > 0 ? dp / bytesPerSample : null,
    },
    routing_imbalance:
      shards.length > 0 && routed > 0
        ? Math.max(...shards.map((s) => s.samples)) / (routed / shards.length)
        : null,
  };
}

function shardHealth(
  shard: Shard,
  inFlight: number,
  rejected: number,
  accepted: number,
): ShardInfo['health'] {
  if (shard.samples === 0) return 'idle';
  if (shard.trainedSamples >= shard.budgetSamples) return 'done';
  if (rejected > Math.max(2, accepted)) return 'bad';
  if (rejected > 0) return 'warn';
  return inFlight > 0 || accepted > 0 ? 'ok' : 'idle';
}

export function shardsView(coordinator: RunningCoordinator, gallery: ShardGallery): Shards {
  const { store, config } = coordinator;
  const leased = new Map<number, number>();
  for (const unit of store.listUnits())
    if (unit.state === 'leased') leased.set(unit.shard, (leased.get(unit.shard) ?? 0) + 1);
  const verdicts = new Map<number, { accepted: number; rejected: number }>();
  for (const result of store.listResults()) {
    const entry = verdicts.get(result.shard) ?? { accepted: 0, rejected: 0 };
    entry[result.status]++;
    verdicts.set(result.shard, entry);
  }
  return {
    frozen: config.frozen,
    shards: store.listShards().map((shard) => {
      const { accepted, rejected } = verdicts.get(shard.id) ?? { accepted: 0, rejected: 0 };
      const inFlight = leased.get(shard.id) ?? 0;
      return {
        id: shard.id,
        samples: shard.samples,
        version: shard.version,
        in_flight: inFlight,
        trained_samples: shard.trainedSamples,
        budget_samples: shard.budgetSamples,
        val_loss: shard.valLoss ?? null,
        accepted,
        rejected,
        health: shardHealth(shard, inFlight, rejected, accepted),
        class_mix: gallery.classMix(shard),
      };
    }),
  };
}

export function workersView(
  coordinator: RunningCoordinator,
  speeds: ReadonlyMap<string, number>,
  offset: number,
  limit: number,
): Workers {
  const all = coordinator.store.listWorkers();
  return {
    total: all.length,
    offset,
    workers: all.slice(offset, offset + limit).map((w) => ({
      id: w.id,
      name: w.name,
      backend: w.backend,
      samples_per_s: speeds.get(w.id) ?? null,
      connected: speeds.has(w.id),
      units_done: w.unitsDone,
      credit: w.credit,
      rejections: w.rejections,
      last_seen_ms: w.lastSeenMs,
      standing: w.rejections === 0 ? 'good' : w.rejections <= w.unitsDone ? 'warned' : 'poor',
    })),
  };
}

export function seriesView(coordinator: RunningCoordinator): Series {
  const { store } = coordinator;
  return {
    evals: store.listEvals().map((e) => ({
      at_ms: e.atMs,
      accepted: e.accepted,
      hard_test_acc: e.hardTestAcc,
      val_loss: e.valLoss,
    })),
    rejections: store
      .listResults()
      .filter((r) => r.status === 'rejected')
      .slice(-200)
      .map((r) => ({ at_ms: r.receivedMs, unit: r.unitId, worker: r.workerId, reason: r.reason ?? '' })),
  };
}
