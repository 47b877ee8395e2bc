/**
 * Keeps the database and the disk bounded however many strangers come and go and however
 * many units a job merges: the event log keeps its newest entries, rows of workers that
 * never returned a result are forgotten once idle, and blobs nothing needs any more
 * (superseded weights and outer states, merged deltas, shard data of an older routing,
 * checkpoints other than the latest and the best) are deleted once unused for a while.
 */
import type { BlobStats, BlobStore } from '../store/blob-store.ts';
import type { Store } from '../store/store.ts';

export interface Retention {
  /** Events kept; older ones are deleted (the dashboard's stream and log read the newest). */
  readonly maxEvents: number;
  /** A worker row with no result is deleted after this long unseen (unless connected). */
  readonly idleWorkerRowMs: number;
  /** How often the sweeper prunes. */
  readonly everyMs: number;
  /**
   * A blob no row needs is kept this long after it was last written or handed out (and at
   * least two leases: a volunteer fetches what its unit named after it was leased).
   */
  readonly blobGraceMs: number;
}

export const DEFAULT_RETENTION: Retention = {
  maxEvents: 50_000,
  idleWorkerRowMs: 3_600_000,
  everyMs: 60_000,
  blobGraceMs: 10 * 60_000,
};

/** How often the sweeper expires leases and runs upkeep: a quarter lease, between 50 ms and 1 s. */
export const sweepEveryMs = (leaseMs: number): number => Math.max(50, Math.min(1000, leaseMs / 4));

/** Deletes the blobs no row needs (Store.blobsInUse) that were not used since `usedBeforeMs`. */
export function collectBlobs(store: Store, blobs: BlobStore, usedBeforeMs: number): BlobStats {
  return blobs.collect(store.blobsInUse(), usedBeforeMs);
}

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
