/**
 * A browser tab keeps a checkpoint of the unit it trains (worker/browser/unit-checkpoints.ts)
 * and its heartbeats say how many samples that checkpoint holds. When the tab closes, its
 * socket goes away, and what it trained need not be lost: the unit is cut where the
 * checkpoint ends, the rest goes back out at once (the shard does not wait), and the saved
 * part stays leased to the volunteer for a lease's lifetime, so that the next visit can hand
 * it in and be credited. Without a checkpoint, the unit goes back out whole, as before.
 */
import type { Logger } from 'pino';
import type { Heartbeat } from '../../proto/messages.ts';
import type { Clock } from '../../shared/clock.ts';
import type { TrainingJob } from '../job/training-job.ts';
import type { Store } from '../store/store.ts';
import { restOfUnit } from './unit-cutter.ts';

export class SavedProgress {
  /** Unit id -> the holder and the samples its checkpoint holds, from its latest heartbeat. */
  private readonly saved = new Map<string, { workerId: string; samples: number }>();

  constructor(
    private readonly job: TrainingJob,
    private readonly store: Store,
    private readonly log: Logger,
    private readonly clock: Clock,
  ) {}

  /** A heartbeat the lease rules accepted. */
  heard(workerId: string, heartbeat: Heartbeat): void {
    if (heartbeat.saved_samples === undefined) return;
    this.saved.set(heartbeat.unit_id, { workerId, samples: heartbeat.saved_samples });
  }

  /** The unit's result came in or it was handed back: nothing is left to keep for it. */
  forget(unitId: string): void {
    this.saved.delete(unitId);
  }

  /** The worker's socket was lost: nothing of it is kept (its leases run on as they are). */
  forgetWorker(workerId: string): void {
    for (const [unitId, saved] of this.saved) if (saved.workerId === workerId) this.saved.delete(unitId);
  }

  /**
   * The worker went away: each of its units with a checkpoint of at least a minibatch is cut
   * to the part saved and held until `lifetimeMs` from now. Returns the ids of the units held.
   */
  holdFor(workerId: string, lifetimeMs: number): string[] {
    const held: string[] = [];
    const now = this.clock.now();
    for (const [unitId, saved] of this.saved) {
      if (saved.workerId !== workerId) continue;
      this.saved.delete(unitId);
      if (this.hold(unitId, saved.samples, now + lifetimeMs)) held.push(unitId);
    }
    return held;
  }

  private hold(unitId: string, samples: number, untilMs: number): boolean {
    const { store, job } = this;
    const unit = store.getUnit(unitId);
    const shard = unit === undefined ? undefined : store.getShard(unit.shard);
    // Quorum compares whole units: a part of one has nothing to be compared with.
    if (unit?.state !== 'leased' || shard === undefined || unit.window === null) return false;
    if (job.config.validation.quorum > 1 || unit.heldBy !== null || unit.leaseToken === null) return false;
    const whole = job.schedule.unitSamples(shard, unit);
    const batch = job.schedule.batchOf(shard);
    if (samples < batch || samples > whole + batch) return false;
    const fraction = samples / whole;
    const cut = fraction < 1 - batch / whole;
    const rest = cut ? restOfUnit(unit, unit.window, fraction) : undefined;
    return store.transaction(() => {
      if (!store.holdLease(unit.id, unit.leaseToken!, untilMs)) return false;
      if (rest !== undefined) {
        store.setUnitWindow(unit.id, {
          from: unit.window!.from,
          to: rest.window!.from,
          epochs: unit.window!.epochs - rest.window!.epochs,
        });
        store.createUnit(rest);
      }
      const fields = { unit: unit.id, shard: unit.shard, worker: unit.workerId, samples };
      store.appendEvent(
        'kept',
        { ...fields, until_ms: untilMs, ...(rest ? { rest: rest.id } : {}) },
        this.clock.now(),
      );
      this.log.info(
        { ...fields, rest: rest?.id },
        'volunteer left with a checkpoint: its part is kept for it',
      );
      return true;
    });
  }
}
