/**
 * Keeps the database bounded however many strangers come and go: the event log keeps its
 * newest entries, and rows of workers that never returned a result are forgotten once idle.
 */
import type { Store } from '../store/store.ts';

export interface Retention {
  /** Events kept; older ones are deleted (the dashboard's stream and log read the newest). */
  readonly maxEvents: number;
  /** A worker row with no result is deleted after this long unseen (unless connected). */
  readonly idleWorkerRowMs: number;
  /** How often the sweeper prunes. */
  readonly everyMs: number;
}

export const DEFAULT_RETENTION: Retention = {
  maxEvents: 50_000,
  idleWorkerRowMs: 3_600_000,
  everyMs: 60_000,
};

export function pruneStore(
  store: Store,
  retention: Retention,
  now: number,
  connected: readonly string[],
): { events: number; workers: number } {
  return store.transaction(() => ({
    events: store.pruneEvents(retention.maxEvents),
    workers: store.pruneIdleWorkers(now - retention.idleWorkerRowMs, connected),
  }));
}
