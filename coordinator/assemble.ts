/**
 * The coordinator's parts, put together once: the training job and the core that leases,
 * judges and merges, on a store, a blob folder and a clock given by the caller. `main.ts`
 * serves them over HTTP on the wall clock, `arbor simulate` drives them in virtual time, and
 * tests seed them on an in-memory store.
 */
import type { Logger } from 'pino';
import type { Clock } from '../shared/clock.ts';
import type { DataSplit } from '../shared/data/dataset.ts';
import { CoordinatorCore } from './core/coordinator-core.ts';
import type { Retention } from './core/upkeep.ts';
import type { JobConfig } from './job/config.ts';
import { TrainingJob } from './job/training-job.ts';
import type { BlobStore } from './store/blob-store.ts';
import type { Store } from './store/store.ts';

export interface CoordinatorParts {
  readonly store: Store;
  readonly blobs: BlobStore;
  readonly config: JobConfig;
  readonly data: DataSplit;
  readonly clock: Clock;
  readonly log: Logger;
  /** Where the final model is written when the job ends. */
  readonly finalModelPath: string;
  /** The job's shared token (`--token`), if any. */
  readonly sharedToken?: string;
  readonly enrolment?: boolean;
  /** How much event and worker history upkeep keeps (tests make it small). */
  readonly retention?: Retention;
}

export function assembleCoordinator(parts: CoordinatorParts): { job: TrainingJob; core: CoordinatorCore } {
  const { store, blobs, config, data, clock, log, finalModelPath } = parts;
  const job = new TrainingJob({ store, blobs, config, data, log, clock, finalModelPath });
  const core = new CoordinatorCore({
    job,
    store,
    blobs,
    clock,
    log,
    ...(parts.sharedToken !== undefined ? { sharedToken: parts.sharedToken } : {}),
    enrolment: parts.enrolment === true,
    ...(parts.retention !== undefined ? { retention: parts.retention } : {}),
  });
  return { job, core };
}
