/**
 * Unit ids, written from a unit's lineage (store.ts `UnitLineage`) in this one place and
 * never parsed back: what a unit is comes from its fields, the id is only its name.
 */
import type { Unit, UnitLineage } from '../store/store.ts';

const ppm = (fraction: number): number => Math.round(fraction * 1e6);

/** The unit first cut at `from` (a fraction) of a shard's schedule. */
export const cutLineage = (shard: number, from: number): UnitLineage => ({
  origin: `s${String(shard).padStart(4, '0')}-c${String(ppm(from)).padStart(6, '0')}`,
  part: null,
  retry: 0,
});

/** What is left of `unit` from `from` on: a part of its origin, not yet retried. */
export const partLineage = (unit: Pick<Unit, 'origin'>, from: number): UnitLineage => ({
  origin: unit.origin,
  part: ppm(from),
  retry: 0,
});

/** `unit` reissued once more after a refused result. */
export const retryLineage = (unit: Pick<Unit, 'origin' | 'part' | 'retry'>): UnitLineage => ({
  origin: unit.origin,
  part: unit.part,
  retry: unit.retry + 1,
});

/** `s0003-c120000`, then `-p<part>` for a part and `-x<retry>` for a retry. */
export function unitId({ origin, part, retry }: UnitLineage): string {
  return `${origin}${part === null ? '' : `-p${part}`}${retry === 0 ? '' : `-x${retry}`}`;
}

/**
 * A backup copy of `unit`'s current attempt: an origin of its own (`<unit>-b<attempt>`), so
 * that its parts never meet the unit's; `backupOf` links the two.
 */
export const backupLineage = (unit: Pick<Unit, 'id' | 'attempts'>): UnitLineage => ({
  origin: `${unit.id}-b${unit.attempts}`,
  part: null,
  retry: 0,
});

/** A new unit's id and lineage fields together, as NewUnit takes them. */
export const named = (lineage: UnitLineage): UnitLineage & { id: string } => ({
  id: unitId(lineage),
  ...lineage,
});
