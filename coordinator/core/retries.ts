import type { Unit, UnitLineage } from '../store/store.ts';
import { named, retryLineage } from './unit-lineage.ts';

/** Reissues of one unit in all, per retry allowed: a volunteer's own repeated rejections count here only. */
const REISSUES_PER_RETRY = 3;

/**
 * A rejected unit's replacement (its next retry) and the volunteers rejected on it so far,
 * or undefined once it is retired: after rejections from more than `maxRetries` distinct
 * volunteers, so that one volunteer cannot retire units by failing them (a retry goes to
 * others first, and each rejection costs its sender standing), or after
 * REISSUES_PER_RETRY × `maxRetries` reissues in all.
 */
export function nextRetry(
  unit: Pick<Unit, 'origin' | 'part' | 'retry' | 'rejectedBy'>,
  owner: string,
  maxRetries: number,
): (UnitLineage & { id: string; rejectedBy: string[] }) | undefined {
  const before = unit.rejectedBy ?? [];
  const rejectedBy = before.includes(owner) ? [...before] : [...before, owner];
  const next = retryLineage(unit);
  return rejectedBy.length > maxRetries || next.retry > REISSUES_PER_RETRY * maxRetries
    ? undefined
    : { ...named(next), rejectedBy };
}
