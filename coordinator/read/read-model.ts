/**
 * The one thing the dashboard, /metrics and `arbor status` read: aggregate queries on the
 * store plus the core's in-memory presence, shaped as the schemas in proto/dashboard.ts.
 */
import { topActivity } from '../top/top-activity.ts';
import type {
  EventItem,
  Series,
  ShardInfo,
  ShardSamples,
  Shards,
  Status,
  Workers,
} from '../../proto/dashboard.ts';
import type { Clock } from '../../shared/clock.ts';
import type { BlobStats, BlobStore } from '../store/blob-store.ts';
import type { CoordinatorCore } from '../core/coordinator-core.ts';
import { centralTwinBatch } from '../job/central-twin.ts';
import type { JobPhase, Shard, ShardActivity, Store, UnitState } from '../store/store.ts';
import { dataParallelBytesPerSample } from './traffic.ts';
import { ETA_WINDOW_MS, etaSeconds } from './eta.ts';
import { ShardGallery } from './shard-gallery.ts';
import { type CrowdTime, crowdTimeOf } from './crowd-time.ts';

const SERIES_EVALS = 2_000;
const CROWD_EVERY_MS = 10_000;
const CROWD_EVENTS = 200_000;
const SERIES_REJECTIONS = 200;

function shardHealth(
  shard: Shard,
  activity: ShardActivity | undefined,
  jobDone: boolean,
): ShardInfo['health'] {
  const { leased = 0, accepted = 0, rejected = 0 } = activity ?? {};
  if (shard.samples === 0) return 'idle';
  // Re-routing rescales a shard's progress in whole samples: the job's end is the last word.
  if (jobDone || shard.trainedSamples >= shard.budgetSamples) return 'done';
  if (rejected > Math.max(2, accepted)) return 'bad';
  if (rejected > 0) return 'warn';
  return leased > 0 || accepted > 0 ? 'ok' : 'idle';
}

export class ReadModel {
  private readonly gallery: ShardGallery;
  private centralHardTestAcc: number | null = null;
  private crowdCache: { atMs: number; value: CrowdTime } | undefined;

  constructor(
    private readonly core: CoordinatorCore,
    private readonly store: Store,
    private readonly blobs: BlobStore,
    private readonly clock: Clock,
  ) {
    this.gallery = new ShardGallery(blobs);
  }

  /** Shows the central twin's accuracy as the reference line. */
  setCentralReference(hardTestAcc: number): void {
    this.centralHardTestAcc = hardTestAcc;
  }

  get phase(): JobPhase {
    return this.core.phase;
  }

  get connectedWorkers(): number {
    return this.core.presence.size;
  }

  status(): Status {
    const { store, core } = this;
    const config = core.job.config;
    const now = this.clock.now();
    const phase = core.phase;
    const shards = store.listShards();
    const trained = this.trainedSamples(shards);
    const budget = shards.reduce((sum, s) => sum + s.budgetSamples, 0);
    const routed = shards.reduce((sum, s) => sum + s.samples, 0);
    const results = store.resultCounts();
    const latest = store.latestEval();
    const counters = store.counters();
    const modelBytes = (counters['model_bytes_out'] ?? 0) + (counters['model_bytes_in'] ?? 0);
    const samplesTrained = shards.reduce((sum, s) => sum + s.trainedSamples, 0);
    const bytesPerSample = samplesTrained > 0 ? modelBytes / samplesTrained : 0;
    const dp = dataParallelBytesPerSample(
      core.job.shape,
      this.connectedWorkers,
      centralTwinBatch(config, Math.max(1, routed)),
    );
    const eta =
      phase === 'done'
        ? 0
        : phase === 'training' && this.connectedWorkers > 0
          ? etaSeconds(store.acceptedSince(now - ETA_WINDOW_MS), budget - trained, now)
          : null;
    return {
      phase,
      paused: core.controls.paused,
      data: config.data,
      model: { depth: config.depth, frozen: config.frozen, leaf: config.leaf },
      started_ms: store.getJob()?.createdMs ?? 0,
      now_ms: now,
      progress: {
        trained_samples: trained,
        budget_samples: budget,
        fraction: budget > 0 ? trained / budget : 0,
        eta_s: eta,
      },
      pretraining: phase === 'pretraining' ? (core.pretrainProgress ?? null) : null,
      accuracy: {
        hard_test_acc: latest?.hardTestAcc ?? null,
        val_loss: latest?.valLoss ?? null,
        central_hard_test_acc: this.centralHardTestAcc,
      },
      workers: {
        connected: this.connectedWorkers,
        known: store.workerCount(),
        none_since_ms: core.presence.emptySinceMs ?? null,
      },
      units: store.unitsByState(),
      results,
      traffic: {
        model_bytes: modelBytes,
        data_bytes: counters['data_bytes_out'] ?? 0,
        bytes_per_sample: bytesPerSample,
        dp_bytes_per_sample: dp,
        comm_reduction: bytesPerSample > 0 ? dp / bytesPerSample : null,
      },
      storage: this.blobs.stats(),
      routing_imbalance:
        shards.length > 0 && routed > 0
          ? Math.max(...shards.map((s) => s.samples)) / (routed / shards.length)
          : null,
      crowd: this.crowd(now),
    };
  }

  /** The crowd's time, recomputed from the events at most every CROWD_EVERY_MS. */
  private crowd(now: number): CrowdTime {
    if (this.crowdCache === undefined || now - this.crowdCache.atMs >= CROWD_EVERY_MS)
      this.crowdCache = { atMs: now, value: crowdTimeOf(this.store.eventsAfter(0, CROWD_EVENTS), now) };
    return this.crowdCache.value;
  }

  shards(): Shards {
    const activity = new Map(this.store.shardActivity().map((a) => [a.shard, a]));
    const jobDone = this.store.getJob()?.phase === 'done';
    return {
      frozen: this.core.job.config.frozen,
      shards: this.store.listShards().map((shard) => {
        const a = activity.get(shard.id);
        return {
          id: shard.id,
          samples: shard.samples,
          version: shard.version,
          in_flight: a?.leased ?? 0,
          mean_staleness: a?.meanStaleness ?? null,
          trained_samples: shard.trainedSamples,
          budget_samples: shard.budgetSamples,
          val_loss: shard.valLoss ?? null,
          accepted: a?.accepted ?? 0,
          rejected: a?.rejected ?? 0,
          health: shardHealth(shard, a, jobDone),
          class_mix: this.gallery.classMix(shard),
        };
      }),
    };
  }

  shardSamples(id: number): ShardSamples | undefined {
    const shard = this.store.getShard(id);
    return shard === undefined ? undefined : this.gallery.samples(shard);
  }

  /** What a volunteer is told with each verdict: its credit and place, and the job's progress. */
  standingOf(workerId: string): { credit: number; rank: number; volunteers: number; job_progress: number } {
    const credit = this.store.getWorker(workerId)?.credit ?? 0;
    const shards = this.store.listShards();
    const budget = shards.reduce((sum, s) => sum + s.budgetSamples, 0);
    return {
      credit,
      rank: this.store.workersAboveCredit(credit) + 1,
      volunteers: this.store.workerCount(),
      job_progress: budget > 0 ? Math.min(1, this.trainedSamples(shards) / budget) : 0,
    };
  }

  workers(offset: number, limit: number): Workers {
    const { presence } = this.core;
    return {
      total: this.store.workerCount(),
      offset,
      workers: this.store.workersPage(offset, limit).map((w) => {
        const live = presence.get(w.id);
        const tokenId = /^w-([0-9a-f]{12})(?:-\d+)?$/.exec(w.id)?.[1];
        return {
          id: w.id,
          name: w.name,
          token_name: tokenId === undefined ? null : (this.store.getToken(tokenId)?.name ?? null),
          backend: w.backend,
          samples_per_s: live?.samplesPerSecond ?? null,
          connected: live !== undefined,
          units_done: w.unitsDone,
          credit: w.credit,
          rejections: w.rejections,
          last_seen_ms: live?.lastSeenMs ?? w.lastSeenMs,
          standing: w.rejections === 0 ? 'good' : w.rejections <= w.unitsDone ? 'warned' : 'poor',
        };
      }),
    };
  }

  series(): Series {
    return {
      evals: this.store
        .listEvals()
        .slice(-SERIES_EVALS)
        .map((e) => ({
          at_ms: e.atMs,
          accepted: e.accepted,
          hard_test_acc: e.hardTestAcc,
          val_loss: e.valLoss,
        })),
      rejections: this.store
        .recentRejections(SERIES_REJECTIONS)
        .map((r) => ({ at_ms: r.receivedMs, unit: r.unitId, worker: r.workerId, reason: r.reason ?? '' })),
      top: topActivity(this.store) ?? null,
    };
  }

  eventsAfter(id: number, limit: number): EventItem[] {
    return this.store
      .eventsAfter(id, limit)
      .map((row) => ({ id: row.id, at_ms: row.atMs, kind: row.kind, data: row.data }));
  }

  lastEventId(): number {
    return this.store.lastEventId();
  }

  /** What /metrics exports, read at scrape time. */
  metrics(): {
    units: Record<UnitState, number>;
    results: { accepted: number; rejected: number };
    rejectionsByRule: { rule: string; n: number }[];
    counters: Record<string, number>;
    hardTestAcc: number | null;
    valLoss: number | null;
    trainedFraction: number;
    storage: BlobStats;
  } {
    const shards = this.store.listShards();
    const budget = shards.reduce((sum, s) => sum + s.budgetSamples, 0);
    const latest = this.store.latestEval();
    return {
      units: this.store.unitsByState(),
      results: this.store.resultCounts(),
      rejectionsByRule: this.store.rejectionsByRule(),
      counters: this.store.counters(),
      hardTestAcc: latest?.hardTestAcc ?? null,
      valLoss: latest?.valLoss ?? null,
      trainedFraction: budget > 0 ? this.trainedSamples(shards) / budget : 0,
      storage: this.blobs.stats(),
    };
  }

  private trainedSamples(shards: readonly Shard[]): number {
    return shards.reduce((sum, s) => sum + Math.min(s.trainedSamples, s.budgetSamples), 0);
  }
}
