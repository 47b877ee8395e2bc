/** Where a unit stands in its shard's schedule: its phase, and the windows of older jobs. */
import { buildRecipe } from '../../shared/fff/recipe.ts';
import type { Routing } from '../../shared/fff/soft-model.ts';
import type { UnitWindow } from '../store/store.ts';
import type { JobConfig } from './config.ts';

/** How a unit's result is validated: after the phase of the shard's schedule it ends in. */
export interface ValidationPhase {
  readonly name: string;
  readonly routing: Routing;
  readonly hardening: number;
}

/** The last phase of every shard's schedule: leaves trained on hard routing, as served. */
export const HARD_LEAVES = 'hard-leaves';

/** The phase of the shard's schedule (soft, harden, hard-leaves) at `position` (0..1) of it. */
export function phaseAt(config: JobConfig, position: number): ValidationPhase {
  const recipe = buildRecipe({
    epochs: config.shard_epochs,
    batchSize: 1,
    lr: config.lr,
    optimizer: config.optimizer,
    hardening: config.hardening,
    leak: 0,
    balance: 0,
    frozenLevels: 0,
    seed: 0,
  });
  const end = position * config.shard_epochs;
  let at = 0;
  for (const phase of recipe.phases) {
    at += phase.epochs;
    if (end <= at + 1e-9) return { name: phase.name, routing: phase.routing, hardening: phase.hardening };
  }
  const last = recipe.phases.at(-1)!;
  return { name: last.name, routing: last.routing, hardening: last.hardening };
}

/** The round of a unit id of a job begun before units were cut by size (`r0003-s0001-x2`: 3). */
const roundOf = (id: string): number => Number(/^r(\d+)-/.exec(id)?.[1] ?? 0);

/** The window of such a unit: its round's share of the shard's schedule. */
export function legacyWindow(config: JobConfig, unitId: string): UnitWindow {
  const rounds = Math.ceil(config.shard_epochs / config.local_epochs);
  const round = Math.min(rounds - 1, roundOf(unitId));
  return { from: round / rounds, to: (round + 1) / rounds, epochs: config.local_epochs };
}
