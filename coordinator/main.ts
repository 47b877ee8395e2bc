/**
 * The coordinator's wiring: config -> store and blobs -> job -> core -> read model -> app ->
 * listen -> sweeper. Nothing below this file knows about the others' lifetimes.
 */
import { existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../shared/clock.ts';
import type { DataSplit } from '../shared/data/dataset.ts';
import type { StepReport } from '../shared/fff/trainer.ts';
import { BlobStore } from './store/blob-store.ts';
import { assembleCoordinator } from './assemble.ts';
import type { CoordinatorCore } from './core/coordinator-core.ts';
import { sweepEveryMs } from './core/upkeep.ts';
import type { TrainingJob } from './job/training-job.ts';
import { buildApp } from './http/app.ts';
import { DEFAULT_LIMITS, type ServerLimits } from './http/limits.ts';
import {
  type JobConfig,
  JobMismatchError,
  parseJobConfig,
  settingDifferences,
  splitRequested,
  withSettings,
} from './job/config.ts';
import { loadJobData } from './job/job-data.ts';
import { ReadModel } from './read/read-model.ts';
import { type WorkerPackage, buildWorkerPackage } from '../packaging/worker-package.ts';
import { type VolunteerBundle, buildVolunteerBundle } from '../packaging/volunteer-bundle.ts';
import { DatabaseLock } from './store/db-lock.ts';
import { SqliteStore } from './store/sqlite-store.ts';
import type { EvalRow } from './store/store.ts';

export interface CoordinatorOptions {
  readonly config: JobConfig;
  /**
   * The settings the user asked for (flags, --config) before defaults. Resuming a stored job
   * is refused when one of these differs from it; without it, the whole config is compared.
   */
  readonly requested?: unknown;
  /** SQLite file; blobs live in `<db>.blobs/` beside it. Reopening it resumes the job. */
  readonly dbPath: string;
  readonly host: string;
  readonly port: number;
  readonly token?: string;
  /** The operator's token for the control endpoints (/v1/admin/…). */
  readonly adminToken?: string;
  /** When set, the dashboard's data and /metrics need it. */
  readonly readToken?: string;
  /** Open enrolment: newcomers get a volunteer token of their own from POST /v1/enrol. */
  readonly enrolment?: boolean;
  readonly finalModelPath?: string;
  readonly log: Logger;
  /** Already loaded data (tests, demo); loaded from the config otherwise. */
  readonly data?: DataSplit;
  readonly onPretrainStep?: (report: StepReport) => void;
  readonly clock?: Clock;
  /** Overrides of the server's limits (coordinator/http/limits.ts has the defaults). */
  readonly limits?: Partial<ServerLimits>;
}

export interface RunningCoordinator {
  readonly url: string;
  readonly core: CoordinatorCore;
  readonly read: ReadModel;
  readonly job: TrainingJob;
  readonly store: SqliteStore;
  readonly config: JobConfig;
  /** Resolves when pretraining and routing are over and units can be leased. */
  readonly prepared: Promise<void>;
  /** Resolves with the final evaluation when every unit is merged. */
  readonly done: Promise<EvalRow>;
  /** The volunteer package (built on first call). */
  workerPackage(): Promise<WorkerPackage>;
  /**
   * Resolves once no worker is connected and every volunteer seen lately has connected since
   * the job ended (and so was told), or after `timeoutMs`.
   */
  workersGone(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** Room above a result's exact size: a larger body cannot be a delta of the job's subtree. */
const RESULT_SLACK_BYTES = 4096;
const EVENT_POLL_MS = 500;

export async function startCoordinator(options: CoordinatorOptions): Promise<RunningCoordinator> {
  const { dbPath } = options;
  const lock = dbPath === ':memory:' ? undefined : DatabaseLock.acquire(dbPath);
  // What this start creates, it removes if it fails (a busy port, missing data): nothing is
  // left for the next start to trip over.
  const created = [dbPath, `${dbPath}-wal`, `${dbPath}-shm`, `${dbPath}.blobs`].filter(
    (path) => dbPath !== ':memory:' && !existsSync(path),
  );
  let store: SqliteStore | undefined;
  try {
    store = new SqliteStore(dbPath);
    return await serve(options, store, () => lock?.release());
  } catch (error) {
    store?.close();
    lock?.release();
    if (created.includes(dbPath)) for (const path of created) rmSync(path, { recursive: true, force: true });
    throw error;
  }
}

async function serve(
  options: CoordinatorOptions,
  store: SqliteStore,
  unlock: () => void,
): Promise<RunningCoordinator> {
  const { log, dbPath } = options;
  const clock = options.clock ?? systemClock;
  const stored = store.getJob();
  let config = options.config;
  if (stored !== undefined) {
    config = parseJobConfig(JSON.parse(stored.config), `job stored in ${dbPath}`);
    const { operational, learning } = splitRequested(options.requested ?? options.config);
    const differences = settingDifferences(learning, config);
    if (differences.length > 0)
      throw new JobMismatchError(
        dbPath,
        `holds a job with other settings: ${differences.join(', ')}. Leave those settings out to resume it, or pass another --db to start a new job.`,
      );
    const changed = settingDifferences(operational, config);
    if (changed.length > 0) {
      config = parseJobConfig(
        withSettings(config, operational),
        'the stored job with the settings changed on restart',
      );
      store.setJobConfig(JSON.stringify(config), clock.now());
      log.info({ changed }, 'operational settings changed on restart');
    }
    log.info({ phase: stored.phase, db: dbPath }, 'resuming the job stored in the database');
  }
  const data = options.data ?? (await loadJobData(config));
  const blobs = new BlobStore(`${dbPath}.blobs`);
  const { job, core } = assembleCoordinator({
    store,
    blobs,
    config,
    data,
    clock,
    log,
    finalModelPath: options.finalModelPath ?? join(dirname(dbPath), 'arbor-final.safetensors'),
    ...(options.token !== undefined ? { sharedToken: options.token } : {}),
    enrolment: options.enrolment === true,
  });
  const read = new ReadModel(core, store, blobs, clock);
  let packaged: ReturnType<typeof buildWorkerPackage> | undefined;
  const workerPackage = () =>
    (packaged ??= buildWorkerPackage().then(
      (pkg) => {
        log.info({ sha256: pkg.sha256, bytes: pkg.bytes.byteLength }, 'volunteer package built');
        return pkg;
      },
      (error: unknown) => {
        log.warn({ err: (error as Error).message }, 'the volunteer package could not be built');
        throw error;
      },
    ));
  let bundled: Promise<VolunteerBundle> | undefined;
  const volunteerScripts = () =>
    (bundled ??= buildVolunteerBundle().catch((error: unknown) => {
      log.warn({ err: (error as Error).message }, 'the browser volunteer could not be built');
      bundled = undefined;
      throw error;
    }));
  const { app, sockets } = buildApp(
    { core, read, blobs },
    {
      maxResultBytes: job.resultBytes + RESULT_SLACK_BYTES,
      limits: { ...DEFAULT_LIMITS, ...options.limits },
      heartbeatMs: config.heartbeat_ms,
      retryAfterMs: config.retry_after_ms,
      eventPollMs: EVENT_POLL_MS,
      ...(options.adminToken !== undefined ? { adminToken: options.adminToken } : {}),
      ...(options.readToken !== undefined ? { readToken: options.readToken } : {}),
      enrolment: options.enrolment === true,
      clock,
      workerPackage,
      volunteerScripts,
      log,
    },
  );
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  const sweeper = setInterval(() => {
    core.expire();
    core.upkeep();
  }, sweepEveryMs(config.lease_ms));
  const prepared = core.prepare(options.onPretrainStep);
  prepared.catch(() => undefined);

  return {
    url: `http://${options.host}:${port}`,
    core,
    read,
    job,
    store,
    config,
    prepared,
    done: core.done,
    workerPackage,
    async workersGone(timeoutMs) {
      const until = Date.now() + timeoutMs;
      await sockets.drained(timeoutMs);
      while (core.unheardOfEnd > 0 && Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        await sockets.drained(Math.max(0, until - Date.now()));
      }
    },
    async close() {
      clearInterval(sweeper);
      await sockets.close();
      const closing = app.close();
      // A keep-alive connection busy when closing began goes idle later and would hold the
      // server open for the 72 s keep-alive timeout: close each one as soon as it idles.
      const idle = setInterval(() => app.server.closeIdleConnections(), 100);
      await closing.finally(() => clearInterval(idle));
      store.close();
      unlock();
    },
  };
}
