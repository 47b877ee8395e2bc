import type { JobConfig } from '../job/config.ts';
import type { NewUnit, Shard, Unit, UnitWindow } from '../store/store.ts';
import { cutLineage, named, partLineage } from './unit-lineage.ts';

/** Smallest unit, in minibatches (unless the shard, or what is left of it, is smaller). */
export const MIN_UNIT_BATCHES = 8;

/** What the cutter knows of the worker asking and of the crowd. */
export interface CutRequest {
  /** Samples per second: measured by the coordinator, else the worker's own claim. */
  readonly samplesPerSecond: number;
  /** True when the speed is only claimed: the unit is a quarter-length probe. */
  readonly speedUnmeasured: boolean;
  /** Shards whose data the worker holds. */
  readonly cachedShards: readonly number[];
  /** Workers that may want a unit of an open shard soon: idle, or busy on an open shard. */
  readonly workers: number;
  readonly now: number;
  readonly batch: (shard: Shard) => number;
  /** Units of each shard being trained now. */
  readonly inFlight: ReadonlyMap<number, number>;
  /** The merge strategy's share of a unit's window among `peers` in flight (MergeStrategy.share). */
  readonly share: (peers: number) => number;
}

const EPSILON = 1e-9;

/**
 * Cuts the next unit from the shards' schedules: from the shard with the least of its
 * schedule handed out (a shard whose data the worker holds, if it is within `in_flight_span`
 * of the least), sized to `unit_seconds` on the worker's speed, no more than `local_epochs`
 * passes, and no more than a fair share of what is left, so that every connected worker
 * gets something while any schedule remains, and no more than its share of `in_flight_span`
 * (units in flight together start from about the same weights, so none should train a phase
 * its base has not nearly reached; and a crowd still arriving must not find a shard taken
 * whole by its first volunteer).
 *
 * A unit trains its window of the schedule, but moves the shard's schedule on by only its
 * share of it: the whole window when every result is a step of its own (`sum`), 1/N of it
 * when the N units in flight together are averaged into one step. The limits above hold for
 * that advance, so a crowd trains each stretch of the schedule with more samples, not fewer.
 */
export function cutUnit(
  config: JobConfig,
  shards: readonly Shard[],
  cut: ReadonlyMap<number, number>,
  request: CutRequest,
): NewUnit | undefined {
  const unfinished = shards.filter((s) => s.samples > 0 && (cut.get(s.id) ?? 0) < 1 - EPSILON);
  const open = unfinished
    .filter((s) => (request.inFlight.get(s.id) ?? 0) < config.max_peers)
    .sort((a, b) => (cut.get(a.id) ?? 0) - (cut.get(b.id) ?? 0) || a.id - b.id);
  const least = open[0];
  if (least === undefined) return undefined;
  const perShard = Math.min(config.max_peers, Math.max(1, Math.ceil(request.workers / unfinished.length)));
  const slack = config.in_flight_span;
  const leastCut = cut.get(least.id) ?? 0;
  const shard =
    open.find((s) => request.cachedShards.includes(s.id) && (cut.get(s.id) ?? 0) <= leastCut + slack) ??
    least;

  const from = cut.get(shard.id) ?? 0;
  const budget = shard.samples * config.shard_epochs;
  const remaining = (1 - from) * budget;
  const peers = Math.max(perShard, (request.inFlight.get(shard.id) ?? 0) + 1);
  const share = Math.min(1, Math.max(EPSILON, request.share(peers)));
  const probe = request.speedUnmeasured ? 0.25 : 1;
  const bySpeed = Math.max(0, request.samplesPerSecond) * config.unit_seconds * probe;
  const byCap = shard.samples * config.local_epochs;
  // Limits on the schedule's advance, turned into samples trained by the share.
  // A lone worker's unit too: a crowd that is still arriving must not find a shard taken whole.
  const fairShare = Math.min(remaining / perShard, (budget * config.in_flight_span) / perShard) / share;
  const batch = request.batch(shard);
  const floor = Math.min(remaining / share, shard.samples, MIN_UNIT_BATCHES * batch);
  // Whole minibatches: a worker trains a window's samples rounded to whole steps, so a
  // window cut between them would be trained longer than the schedule it advances.
  const wanted = Math.min(bySpeed, byCap, fairShare, remaining / share);
  let size = Math.max(floor, wanted >= batch ? Math.floor(wanted / batch) * batch : wanted);
  if ((remaining - size * share) / share < floor) size = remaining / share;
  const advance = size * share;
  const to = Math.min(1, from + size / budget);
  return {
    ...named(cutLineage(shard.id, from)),
    shard: shard.id,
    baseVersion: shard.version,
    createdMs: request.now,
    window: { from, to, epochs: ((to - from) * budget) / shard.samples },
    ...(share < 1
      ? {
          share: Math.min(1, advance / Math.max(EPSILON, (to - from) * budget)),
          cutTo: Math.min(1, from + advance / budget),
        }
      : {}),
  };
}

/**
 * What is left of a unit whose worker trained `fraction` of it: the rest of its window, as a
 * unit of its own, a part of the same origin.
 */
export function restOfUnit(unit: Unit, window: UnitWindow, fraction: number): NewUnit {
  const from = window.from + (window.to - window.from) * fraction;
  return {
    ...named(partLineage(unit, from)),
    shard: unit.shard,
    baseVersion: unit.baseVersion,
    createdMs: unit.createdMs,
    window: { from, to: window.to, epochs: window.epochs * (1 - fraction) },
    share: unit.share ?? null,
    cutTo: unit.cutTo ?? window.to,
  };
}
