import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { DataSplit } from '../shared/data/dataset.ts';
import type { StepReport } from '../shared/fff/trainer.ts';
import { BlobStore } from './blob-store.ts';
import { type JobConfig, parseJobConfig } from './job/config.ts';
import { loadJobData } from './job/job-data.ts';
import { TrainingJob } from './job/training-job.ts';
import { ResultIntake } from './merge/result-intake.ts';
import { Scheduler } from './scheduler.ts';
import { registerDashboard } from './dashboard/routes.ts';
import { type CoordinatorMetrics, registerMetrics } from './metrics.ts';
import { buildServer } from './server.ts';
import { send } from './worker-session.ts';
import { type EvalRow, SqliteStore } from './store/store.ts';

export interface CoordinatorOptions {
  readonly config: JobConfig;
  /** SQLite file; blobs live in `<db>.blobs/` beside it. Reopening it resumes the job. */
  readonly dbPath: string;
  readonly host: string;
  readonly port: number;
  readonly token?: string;
  readonly finalModelPath?: string;
  readonly log: Logger;
  /** Already loaded data (tests, demo); loaded from the config otherwise. */
  readonly data?: DataSplit;
  readonly onPretrainStep?: (report: StepReport) => void;
  /** More routes; `running` is available once the coordinator listens. */
  readonly extraRoutes?: (app: FastifyInstance, running: () => RunningCoordinator) => void;
}

export interface RunningCoordinator {
  readonly url: string;
  readonly job: TrainingJob;
  readonly store: SqliteStore;
  readonly config: JobConfig;
  readonly connectedWorkers: () => number;
  /** Resolves once no worker is connected, or after `timeoutMs`. */
  workersGone(timeoutMs: number): Promise<void>;
  /** Shows the central twin's accuracy on the dashboard as the reference. */
  setCentralReference(hardTestAcc: number): void;
  /** Resolves with the final evaluation when every unit is merged. */
  readonly done: Promise<EvalRow>;
  close(): Promise<void>;
}

const MAX_RESULT_BYTES = 512 * 1024 * 1024;

export async function startCoordinator(options: CoordinatorOptions): Promise<RunningCoordinator> {
  const { log, dbPath } = options;
  const now = () => Date.now();
  const store = new SqliteStore(dbPath);
  const stored = store.getJob();
  let config = options.config;
  if (stored !== undefined) {
    config = parseJobConfig(JSON.parse(stored.config), `job stored in ${dbPath}`);
    if (JSON.stringify(config) !== JSON.stringify(options.config))
      log.warn('the database holds a job with other settings: resuming it with its own settings');
    log.info({ phase: stored.phase }, 'resuming the job stored in the database');
  }
  const data = options.data ?? (await loadJobData(config));
  const blobs = new BlobStore(`${dbPath}.blobs`);
  const job = new TrainingJob({
    store,
    blobs,
    config,
    data,
    log,
    now,
    finalModelPath: options.finalModelPath ?? join(dirname(dbPath), 'arbor-final.safetensors'),
  });
  const scheduler = new Scheduler(job, store, blobs, log, now);
  const intake = new ResultIntake(job, store, blobs, log, now, {
    validation: (seconds) => metrics?.observeValidation(seconds),
    merge: (seconds) => metrics?.observeMerge(seconds),
  });
  let dataBlobs = new Set<string>();
  const refreshDataBlobs = () => {
    dataBlobs = new Set(store.listShards().map((s) => s.dataBlob));
  };

  let resolveDone!: (row: EvalRow) => void;
  let rejectDone!: (error: Error) => void;
  const done = new Promise<EvalRow>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  done.catch(() => undefined);
  let accepted = store.listResults().filter((r) => r.status === 'accepted').length;
  const checkFinished = (): void => {
    const final = job.finishIfComplete();
    if (final === undefined) return;
    for (const ws of server.connected.values())
      send(ws, { type: 'no_work', retry_after_ms: config.retry_after_ms, done: true });
    resolveDone(final);
  };

  const running: { current?: RunningCoordinator } = {};
  let centralHardTestAcc: number | undefined;
  let metrics: CoordinatorMetrics | undefined;
  // eslint-disable-next-line prefer-const -- assigned once the server exists; checkFinished needs it
  let server: ReturnType<typeof buildServer>;
  server = buildServer({
    store,
    blobs,
    scheduler,
    intake,
    log,
    now,
    heartbeatMs: config.heartbeat_ms,
    maxResultBytes: MAX_RESULT_BYTES,
    ...(options.token !== undefined ? { token: options.token } : {}),
    isDataBlob: (sha) => dataBlobs.has(sha),
    afterAccept: () => {
      accepted++;
      if (accepted % config.eval_every === 0 && job.openUnits() > 0) job.evaluate();
      checkFinished();
    },
    extraRoutes: (app, speeds) => {
      registerDashboard(app, {
        coordinator: () => running.current!,
        blobs,
        speeds,
        centralHardTestAcc: () => centralHardTestAcc,
      });
      metrics = registerMetrics(app, { coordinator: () => running.current! });
      options.extraRoutes?.(app, () => running.current!);
    },
  });
  await server.app.listen({ host: options.host, port: options.port });
  const address = server.app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  const url = `http://${options.host}:${port}`;
  const expiry = setInterval(() => scheduler.expire(), Math.max(50, Math.min(1000, config.lease_ms / 4)));

  const coordinator: RunningCoordinator = {
    url,
    job,
    store,
    config,
    connectedWorkers: () => server.connected.size,
    async workersGone(timeoutMs) {
      const until = Date.now() + timeoutMs;
      while (server.connected.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    },
    done,
    setCentralReference(hardTestAcc) {
      centralHardTestAcc = hardTestAcc;
    },
    async close() {
      clearInterval(expiry);
      const closed = [...server.wss.clients].map((ws) => new Promise((resolve) => ws.once('close', resolve)));
      for (const ws of server.wss.clients) ws.terminate();
      await Promise.all(closed);
      server.wss.close();
      await server.app.close();
      store.close();
    },
  };
  running.current = coordinator;

  job
    .prepare(options.onPretrainStep)
    .then(() => {
      refreshDataBlobs();
      if (job.phase === 'done') {
        const last = store.listEvals().at(-1);
        if (last) resolveDone(last);
      } else checkFinished();
    })
    .catch((error: unknown) => {
      log.error({ err: error }, 'job preparation failed');
      rejectDone(error as Error);
    });
  return coordinator;
}
