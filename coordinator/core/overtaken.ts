/**
 * A crowd moves a shard's schedule on while a slow or silent volunteer still holds a unit of
 * an earlier stretch of it. Once the shard has merged a window that starts a whole
 * `in_flight_span` past the end of a unit's window, the unit is overtaken: its result would
 * train a phase the shard has left onto weights that have moved on, and waiting for it keeps
 * the job open. It is retired instead (not merged, not retried, not backed up) and its holder
 * is told to stop.
 */
import type { JobConfig } from '../job/config.ts';
import type { Store, Unit, UnitWindow } from '../store/store.ts';

const EPSILON = 1e-9;

/** Windows of the shard ending at or before this point of its schedule are overtaken. */
export function overtakenBy(config: JobConfig, store: Store, shard: number): number {
  // Quorum compares two copies of one unit: each is awaited, never overtaken.
  if (config.validation.quorum > 1) return -Infinity;
  return store.mergedFront(shard) - config.in_flight_span + EPSILON;
}

export const isOvertaken = (
  config: JobConfig,
  store: Store,
  shard: number,
  window: UnitWindow | null,
): boolean => window !== null && window.to <= overtakenBy(config, store, shard);

/** Retires the shard's open units it has overtaken (call inside the merge's transaction). */
export function retireOvertaken(config: JobConfig, store: Store, shard: number): Unit[] {
  const by = overtakenBy(config, store, shard);
  return by > 0 ? store.retireUnitsEndingBy(shard, by) : [];
}
