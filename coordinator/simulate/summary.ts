import type { Store } from '../store/store.ts';
import type { CurvePoint } from './accuracy-curve.ts';
import type { CrowdTime } from '../read/crowd-time.ts';
import { type TopActivity, topActivity } from '../top/top-activity.ts';

export interface SimulationResult {
  readonly volunteers: number;
  readonly hard_test_acc: number;
  readonly virtual_wall_s: number;
  /** Share of every connected volunteer's time, over the whole job, spent on merged work. */
  readonly utilization: number;
  /** Share of it spent connected without a unit. */
  readonly idle_fraction: number;
  /** Share of it spent training what was never merged. */
  readonly wasted_fraction: number;
  /** Share of the training done whose result was never merged. */
  readonly wasted_work: number;
  /** The served model's hard test accuracy over virtual time, the final model last. */
  readonly curve: readonly CurvePoint[];
  /** Seconds until the served model first reached each target accuracy (null: never). */
  readonly time_to_acc: Readonly<Record<string, number | null>>;
  readonly accepted: number;
  readonly rejected: number;
  /** Rejections by the acceptance rule that made them. */
  readonly rejected_by: Readonly<Record<string, number>>;
  readonly mean_staleness: number | null;
  readonly units: number;
  /** Largest shard over the mean shard. */
  readonly routing_imbalance: number;
  /** Per shard: samples, accepted results, their mean staleness, most units in flight at once. */
  readonly shards: readonly {
    readonly shard: number;
    readonly samples: number;
    readonly accepted: number;
    readonly mean_staleness: number | null;
    readonly peak_in_flight: number;
  }[];
  readonly partial: number;
  readonly vanished: number;
  readonly real_seconds: number;
  /** The job's blob store: the most it held at once, and what it holds at the end. */
  readonly blob_bytes: { readonly peak: number; readonly final: number };
  /** Slow top: its updates and re-routes. */
  readonly top?: Omit<TopActivity, 'last_update'>;
  /** With cheaters: results they submitted and how many were accepted. */
  readonly cheats?: {
    readonly submitted: number;
    readonly accepted: number;
    /** Accepted cheats by kind (cheats.ts). */
    readonly accepted_kinds: Readonly<Record<string, number>>;
  };
}

/** What the run itself counted; the rest comes from the store. */
export interface RunCounts {
  readonly volunteers: number;
  readonly hardTestAcc: number;
  readonly wallMs: number;
  readonly crowd: CrowdTime;
  readonly curve: readonly CurvePoint[];
  readonly timeToAcc: Record<string, number | null>;
  readonly counts: {
    readonly units: number;
    readonly partial: number;
    readonly vanished: number;
    readonly wastedMs: number;
    readonly busyMs: number;
  };
  readonly peakInFlight: ReadonlyMap<number, number>;
  readonly realSeconds: number;
  readonly blobBytes: { readonly peak: number; readonly final: number };
  /** Results the cheaters submitted, and how many of them were accepted. */
  readonly cheats?: {
    readonly submitted: number;
    readonly accepted: number;
    /** Accepted cheats by kind (cheats.ts). */
    readonly acceptedKinds: Readonly<Record<string, number>>;
  };
}

/** The simulation's report: the run's own counts and the job's outcome from its store. */
export function summarize(store: Store, run: RunCounts): SimulationResult {
  const activity = store.shardActivity();
  const stale = activity.filter((a) => a.meanStaleness !== null);
  const shards = store.listShards().map((s) => {
    const a = activity.find((x) => x.shard === s.id);
    return {
      shard: s.id,
      samples: s.samples,
      accepted: a?.accepted ?? 0,
      mean_staleness: a?.meanStaleness ?? null,
      peak_in_flight: run.peakInFlight.get(s.id) ?? 0,
    };
  });
  const sizes = shards.map((s) => s.samples);
  const results = store.resultCounts();
  const weighted = stale.reduce((sum, a) => sum + a.meanStaleness! * a.accepted, 0);
  const merged = stale.reduce((sum, a) => sum + a.accepted, 0);
  const top = topActivity(store);
  return {
    volunteers: run.volunteers,
    hard_test_acc: run.hardTestAcc,
    virtual_wall_s: run.wallMs / 1000,
    ...run.crowd,
    wasted_work: run.counts.wastedMs / Math.max(1, run.counts.busyMs),
    curve: run.curve,
    time_to_acc: run.timeToAcc,
    accepted: results.accepted,
    rejected: results.rejected,
    rejected_by: Object.fromEntries(store.rejectionsByRule().map((r) => [r.rule, r.n])),
    mean_staleness: merged === 0 ? null : weighted / merged,
    units: run.counts.units,
    routing_imbalance: Math.max(...sizes) / (sizes.reduce((a, b) => a + b, 0) / sizes.length),
    shards,
    partial: run.counts.partial,
    vanished: run.counts.vanished,
    real_seconds: run.realSeconds,
    blob_bytes: run.blobBytes,
    ...(run.cheats !== undefined
      ? {
          cheats: {
            submitted: run.cheats.submitted,
            accepted: run.cheats.accepted,
            accepted_kinds: run.cheats.acceptedKinds,
          },
        }
      : {}),
    ...(top !== undefined
      ? {
          top: {
            version: top.version,
            routing_version: top.routing_version,
            updates: top.updates,
            dropped: top.dropped,
            reroutes: top.reroutes,
          },
        }
      : {}),
  };
}
