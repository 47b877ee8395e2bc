/**
 * A worker's standing, as BOINC's host reliability: results that keep failing cost it first
 * time (a cooldown that doubles with each further rejection), then its units. Every
 * rejection counts but one for staleness, which is the coordinator's timing, not the
 * worker's doing; one for validation loss counts only once others' results were accepted
 * after it (an honest lone worker's overfitting is not its fault: measured, it was rejected
 * several times in a row and spent most of a job cooling down). Benching also needs others
 * to have been accepted during the streak.
 */
import type { JobConfig } from '../job/config.ts';
import type { Store } from '../store/store.ts';

export type Standing =
  | { readonly kind: 'good' }
  | { readonly kind: 'cooling'; readonly untilMs: number; readonly streak: number }
  | { readonly kind: 'benched'; readonly streak: number };

const LONGEST_COOLDOWN_MS = 3_600_000;
/** The worker asks again at least this often, so its socket never looks idle. */
const LONGEST_RETRY_HINT_MS = 600_000;
/** Rules whose rejection says nothing about the worker's honesty. */
const NOT_A_FAULT = new Set(['not-too-stale']);
/** Rules whose rejection is a fault only while others' results are accepted. */
const FAULT_AMONG_OTHERS = new Set(['validation-loss']);

/**
 * Whose standing a connection shares: a volunteer's (or a name's) further connections are
 * `<id>-2`, `<id>-3`…, and they stand or fall together.
 */
export const standingOwner = (workerId: string): string => /^w-[0-9a-f]{12}/.exec(workerId)?.[0] ?? workerId;

export function standingOf(
  store: Store,
  rules: JobConfig['standing'],
  workerId: string,
  now: number,
): Standing {
  const window = Math.max(rules.bench_after, rules.cooldown_after);
  const verdicts = store.recentVerdicts(standingOwner(workerId), window);
  let streak = 0;
  let firstMs = now;
  let lastMs = 0;
  for (const verdict of verdicts) {
    if (verdict.status === 'accepted') break;
    if (verdict.rule !== null && NOT_A_FAULT.has(verdict.rule)) continue;
    if (
      verdict.rule !== null &&
      FAULT_AMONG_OTHERS.has(verdict.rule) &&
      store.acceptedSince(verdict.receivedMs).results === 0
    )
      continue;
    streak++;
    firstMs = verdict.receivedMs;
    lastMs = Math.max(lastMs, verdict.receivedMs);
  }
  if (streak >= rules.bench_after && store.acceptedSince(firstMs).results > 0)
    return { kind: 'benched', streak };
  if (streak < rules.cooldown_after) return { kind: 'good' };
  const wait = Math.min(LONGEST_COOLDOWN_MS, rules.cooldown_ms * 2 ** (streak - rules.cooldown_after));
  return lastMs + wait > now ? { kind: 'cooling', untilMs: lastMs + wait, streak } : { kind: 'good' };
}

/** What the worker is told instead of a unit, or undefined when it may have one. */
export function standingRefusal(
  standing: Standing,
  now: number,
  retryAfterMs: number,
): { retryAfterMs: number; reason: string } | undefined {
  switch (standing.kind) {
    case 'good':
      return undefined;
    case 'cooling':
      return {
        retryAfterMs: Math.min(LONGEST_RETRY_HINT_MS, Math.max(retryAfterMs, standing.untilMs - now)),
        reason: `your last ${standing.streak} results were rejected: next unit in ${Math.ceil((standing.untilMs - now) / 1000)} s`,
      };
    case 'benched':
      return {
        retryAfterMs: LONGEST_RETRY_HINT_MS,
        reason: `your last ${standing.streak} results were rejected while others were accepted: no more units for this worker in this job`,
      };
  }
}
