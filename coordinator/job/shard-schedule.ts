/**
 * Each shard's schedule (soft, hardening, hard leaves over its whole budget) and a unit's
 * place in it: the unit's window, the phase that judges its result, its minibatch and the
 * samples it trains, and what of the job is left.
 */
import { autoBatchSize } from '../../shared/fff/recipe.ts';
import { samplesOfRun } from '../../shared/fff/trainer.ts';
import type { Shard, Store, UnitWindow } from '../store/store.ts';
import type { JobConfig } from './config.ts';
import { type ValidationPhase, legacyWindow, phaseAt } from './schedule.ts';

/** A unit as far as its window goes (a plain id is a unit of its round). */
export type UnitRef = {
  readonly id: string;
  readonly window?: UnitWindow | null;
  /** The shard's size when the unit was leased. */
  readonly baseSamples?: number | null;
};

export class ShardSchedule {
  constructor(
    private readonly store: Store,
    private readonly config: JobConfig,
  ) {}

  /**
   * The shard's schedule (soft, hardening, hard leaves) runs over its whole budget; a unit
   * trains its window of it, so that short units follow one long recipe.
   */
  scheduleOf(unit: UnitRef): { epochs: number; from: number; to: number } {
    const { from, to } = this.windowOf(unit);
    return { epochs: this.config.shard_epochs, from, to };
  }

  /**
   * The training phase a unit's window ends in, which decides how its result is validated:
   * hard-routed phases by the served model's loss, soft ones by their own objective.
   */
  validationPhase(unit: UnitRef): ValidationPhase {
    return phaseAt(this.config, this.windowOf(unit).to);
  }

  /** The minibatch of a shard's units: set, or chosen for its whole schedule. */
  batchOf(shard: Shard): number {
    return this.config.batch ?? autoBatchSize(shard.samples, this.config.shard_epochs);
  }

  /** The unit's stretch of its shard's schedule (units of older jobs: their round's). */
  windowOf(unit: UnitRef): UnitWindow {
    if (unit.window) return unit.window;
    const stored = unit.window === undefined ? this.store.getUnit(unit.id)?.window : null;
    if (stored) return stored;
    return legacyWindow(this.config, unit.id);
  }

  /** Samples a whole unit trains: what its full result is credited with. */
  unitSamples(shard: Shard, unit: UnitRef): number {
    const samples = unit.baseSamples ?? shard.samples;
    return samplesOfRun(this.windowOf(unit).epochs, samples, this.batchOf(shard));
  }

  /** Units still to be trained or merged, and shards with budget not yet cut into units. */
  openUnits(): number {
    const counts = this.store.unitsByState();
    const cut = this.store.cutProgress();
    const uncut = this.store
      .listShards()
      .filter((s) => s.samples > 0 && (cut.get(s.id) ?? 0) < 1 - 1e-9).length;
    return counts.ready + counts.leased + counts.submitted + uncut;
  }

  /** Whether every shard with samples has trained into `phase` (merged, not only handed out). */
  everyShardPast(phase: string): boolean {
    return this.store
      .listShards()
      .filter((s) => s.samples > 0)
      .every((s) => phaseAt(this.config, s.trainedSamples / Math.max(1, s.budgetSamples)).name === phase);
  }

  /** Share of the job's sample budget trained so far (0..1). */
  budgetProgress(): number {
    const shards = this.store.listShards();
    const budget = shards.reduce((sum, s) => sum + s.budgetSamples, 0);
    const trained = shards.reduce((sum, s) => sum + Math.min(s.trainedSamples, s.budgetSamples), 0);
    return budget > 0 ? trained / budget : 0;
  }

  /** Units of jobs begun before units were cut by size get their round's window written down. */
  backfillWindows(): void {
    const { store } = this;
    const legacy = store.listUnits().filter((unit) => unit.window === null);
    if (legacy.length === 0) return;
    store.transaction(() => {
      for (const unit of legacy) store.setUnitWindow(unit.id, this.windowOf(unit));
    });
  }
}
