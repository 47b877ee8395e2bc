/** What a job runs on: its store and blobs, settings, data, log, clock and output path. */
import type { Logger } from 'pino';
import type { Clock } from '../../shared/clock.ts';
import type { DataSplit } from '../../shared/data/dataset.ts';
import type { BlobStore } from '../store/blob-store.ts';
import type { Store } from '../store/store.ts';
import type { JobConfig } from './config.ts';

export interface JobContext {
  readonly store: Store;
  readonly blobs: BlobStore;
  readonly config: JobConfig;
  readonly data: DataSplit;
  readonly log: Logger;
  readonly clock: Clock;
  /** Where the final model is written when the job ends. */
  readonly finalModelPath: string;
}
