import type { Logger } from 'pino';
import { httpBase } from '../proto/routes.ts';
import { BlobCache } from './blob-cache.ts';
import { CoordinatorConnection } from './connection.ts';
import { type VolunteerOptions, type WorkerSummary, runVolunteer } from './volunteer-loop.ts';

export type { WorkerSummary } from './volunteer-loop.ts';

export interface WorkerOptions extends Omit<VolunteerOptions, 'connect' | 'blobs' | 'log'> {
  readonly cacheDir?: string;
  /** Bytes the cache directory may hold (DEFAULT_MAX_CACHE_MB when unset). */
  readonly maxCacheBytes?: number;
  readonly log: Logger;
}

/** The volunteer loop in Node: the ws control socket, blobs cached in memory and on disk. */
export function runWorker(options: WorkerOptions): Promise<WorkerSummary> {
  return runVolunteer({
    ...options,
    connect: (url, token) => CoordinatorConnection.open(url, token),
    blobs: new BlobCache(httpBase(options.url), options.token, options.cacheDir, options.maxCacheBytes),
  });
}
