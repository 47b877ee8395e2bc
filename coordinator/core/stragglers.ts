/**
 * Volunteers of every speed, some of whom vanish: a unit cut for someone else is cut again
 * for the speed of whoever takes it, and when nothing new is left to hand out, a unit whose
 * holder has gone quiet or is far slower gets a backup copy for an idle volunteer (the first
 * copy merged supersedes the other: intake.ts).
 */
import type { Logger } from 'pino';
import type { TrainingJob } from '../job/training-job.ts';
import type { Store, Unit } from '../store/store.ts';
import { MIN_UNIT_BATCHES, restOfUnit } from './unit-cutter.ts';
import { backupLineage, named } from './unit-lineage.ts';
import { standingOwner } from './standing.ts';

/** Who asks for work, as far as sizing a new unit goes. */
export interface Asker {
  readonly name?: string;
  readonly cachedShards?: readonly number[];
  /** The speed the worker claimed in its hello. */
  readonly claimedSamplesPerSecond?: number;
  /** The ids of the workers connected now. */
  readonly connected?: readonly string[];
}

/** A holder that has missed this many heartbeats in a row has gone quiet: its unit gets a backup. */
const MISSED_HEARTBEATS = 3;

/** Claims above this are not believed: the first unit of such a worker is sized as if this. */
const MAX_CLAIMED_SAMPLES_PER_SECOND = 1e5;

export class Stragglers {
  constructor(
    private readonly job: TrainingJob,
    private readonly store: Store,
    private readonly log: Logger,
  ) {}

  /** The worker's speed: measured by this coordinator, else its claim (capped). */
  speedOf(workerId: string, asker: Asker): { samplesPerSecond: number; speedUnmeasured: boolean } {
    const measured = this.store.lastThroughput(workerId);
    const claimed = Math.min(MAX_CLAIMED_SAMPLES_PER_SECOND, asker.claimedSamplesPerSecond ?? 0);
    return {
      samplesPerSecond: measured ? (measured.samples * 1000) / Math.max(1, measured.ms) : claimed,
      speedUnmeasured: measured === undefined,
    };
  }

  /**
   * A unit cut for someone else (handed back, left by a volunteer who vanished, reissued)
   * is cut again for this worker's speed when it would take it over twice `unit_seconds`:
   * it trains the first part, and the rest becomes a unit of its own.
   */
  refit(unit: Unit, workerId: string, asker: Asker): Unit {
    if (unit.heldBy !== null || unit.window === null) return unit;
    const shard = this.store.getShard(unit.shard);
    if (shard === undefined) return unit;
    const { samplesPerSecond, speedUnmeasured } = this.speedOf(workerId, asker);
    const wanted = Math.max(
      MIN_UNIT_BATCHES * this.job.schedule.batchOf(shard),
      samplesPerSecond * this.job.config.unit_seconds * (speedUnmeasured ? 0.25 : 1),
    );
    const samples = this.job.schedule.unitSamples(shard, unit);
    if (samples <= 2 * wanted) return unit;
    const fraction = wanted / samples;
    const { window } = unit;
    const first = {
      from: window.from,
      to: window.from + (window.to - window.from) * fraction,
      epochs: window.epochs * fraction,
    };
    const rest = restOfUnit(unit, window, fraction);
    this.store.transaction(() => {
      this.store.setUnitWindow(unit.id, first);
      this.store.createUnit(rest);
    });
    this.log.info({ unit: unit.id, rest: rest.id, worker: workerId }, 'unit cut again for a slower worker');
    return { ...unit, window: first };
  }

  /**
   * Nothing new to hand out: a unit whose holder has gone quiet (three heartbeats missed), or,
   * once its shard's schedule is all cut, one this worker would train
   * in less than half the time its holder (measured slower) still needs, gets a backup copy
   * for this worker. Whichever copy is merged first supersedes the other (intake.ts), so a
   * crowd's last units do not wait on its slowest or vanished volunteers.
   */
  backUp(workerId: string, asker: Asker, now: number): boolean {
    const { config } = this.job;
    if (config.validation.quorum > 1) return false;
    const { samplesPerSecond, speedUnmeasured } = this.speedOf(workerId, asker);
    if (samplesPerSecond <= 0 || speedUnmeasured) return false;
    const cut = this.store.cutProgress();
    // A volunteer never holds two copies of one unit, on any of its connections.
    const owner = standingOwner(workerId);
    const leased = this.store
      .leasedUnits()
      .filter((u) => u.workerId !== null && standingOwner(u.workerId) !== owner && u.leasedMs !== null);
    const backedUp = new Set(leased.flatMap((u) => (u.backupOf ? [u.backupOf, u.id] : [])));
    let pick: { unit: Unit; leftMs: number } | undefined;
    for (const unit of leased) {
      if (backedUp.has(unit.id) || unit.backupOf || unit.heldBy !== null || unit.window === null) continue;
      const shard = this.store.getShard(unit.shard);
      if (shard === undefined) continue;
      const samples = this.job.schedule.unitSamples(shard, unit);
      // A heartbeat pushes the deadline to a lease from then: three missed, and it has gone quiet.
      const quiet =
        (unit.deadlineMs ?? Infinity) - now < config.lease_ms - MISSED_HEARTBEATS * config.heartbeat_ms;
      const holder = this.store.lastThroughput(unit.workerId!);
      // A holder not yet measured was given about unit_seconds of work for its claimed speed.
      const leftMs = holder
        ? unit.leasedMs! + (samples * holder.ms) / Math.max(1, holder.samples) - now
        : quiet
          ? Infinity
          : unit.leasedMs! + config.unit_seconds * 1000 - now;
      const mineMs = (samples / samplesPerSecond) * 1000;
      const endGame = (cut.get(unit.shard) ?? 0) >= 1 - 1e-9 && mineMs < leftMs / 2;
      if ((quiet || endGame) && (pick === undefined || leftMs > pick.leftMs)) pick = { unit, leftMs };
    }
    if (pick === undefined) return false;
    const { unit } = pick;
    const copy = {
      ...named(backupLineage(unit)),
      shard: unit.shard,
      baseVersion: unit.baseVersion,
      createdMs: unit.createdMs,
      window: unit.window,
      share: unit.share ?? null,
      cutTo: unit.cutTo ?? null,
      backupOf: unit.id,
    };
    if (this.store.getUnit(copy.id) !== undefined) return false;
    this.store.createUnit(copy);
    this.log.info({ unit: unit.id, backup: copy.id, worker: workerId }, 'backup of a slow or silent unit');
    return true;
  }
}
