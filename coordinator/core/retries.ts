import type { Unit } from '../store/store.ts';

/** Reissues of one unit in all, per retry allowed: a volunteer's own repeated rejections count here only. */
const REISSUES_PER_RETRY = 3;

/**
 * A rejected unit's replacement (`…-x1`, `…-x2`) and the volunteers rejected on it so far,
 * or undefined once it is retired: after rejections from more than `maxRetries` distinct
 * volunteers, so that one volunteer cannot retire units by failing them (a retry goes to
 * others first, and each rejection costs its sender standing), or after
 * REISSUES_PER_RETRY × `maxRetries` reissues in all.
 */
export function nextRetry(
  unit: Pick<Unit, 'id' | 'rejectedBy'>,
  owner: string,
  maxRetries: number,
): { id: string; rejectedBy: string[] } | undefined {
  const before = unit.rejectedBy ?? [];
  const rejectedBy = before.includes(owner) ? [...before] : [...before, owner];
  const match = /^(.*?)(?:-x(\d+))?$/.exec(unit.id)!;
  const retry = Number(match[2] ?? 0) + 1;
  return rejectedBy.length > maxRetries || retry > REISSUES_PER_RETRY * maxRetries
    ? undefined
    : { id: `${match[1]}-x${retry}`, rejectedBy };
}
