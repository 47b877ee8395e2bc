/**
 * The volunteer loop, the same in Node and in a browser's Web Worker: the socket and the
 * blob source are handed in, so nothing here touches the file system or a Node module.
 */
import { type ErrorCode, ProtocolError } from '../proto/errors.ts';
import type { Assign, Welcome } from '../proto/messages.ts';
import { PROTOCOL_VERSION } from '../proto/version.ts';
import { httpBase, socketUrl } from '../proto/routes.ts';
import { decodeFFF } from '../shared/checkpoint/fff-checkpoint.ts';
import { decodeShardData } from '../shared/data/shard-blob.ts';
import { trainUnit } from '../shared/fff/local-training.ts';
import type { PathContext } from '../shared/fff/path-model.ts';
import type { OptimizerCarry, StepReport, TrainingSet } from '../shared/fff/trainer.ts';
import { encodeUnitDelta } from '../shared/fff/unit-delta.ts';
import { sameShape } from '../shared/fff/weights.ts';
import { assignedPath, assignedRecipe } from '../shared/assigned-recipe.ts';
import { unreachableHint } from './connection-hint.ts';
import { type VolunteerStanding, uploadResult } from './upload-result.ts';
import {
  type BlobSource,
  type ControlSocket,
  type Pacing,
  type UnitCheckpoints,
  type VolunteerLog,
  pause,
} from './volunteer-ports.ts';

export interface VolunteerOptions {
  /** ws://HOST:PORT (the control socket is /v1/ws under it). */
  readonly url: string;
  readonly token?: string;
  readonly name: string;
  readonly backend: string;
  readonly gpu: boolean;
  readonly threads: number;
  readonly samplesPerSecond: number;
  /** Stop after this many units (default: until the job is done). */
  readonly maxUnits?: number;
  readonly log: VolunteerLog;
  readonly connect: (url: string, token?: string) => Promise<ControlSocket>;
  readonly blobs: BlobSource;
  /** Aborting finishes nothing new: the current unit is handed back and the worker exits. */
  readonly signal?: AbortSignal;
  readonly reconnect?: { readonly initialMs: number; readonly maxMs: number };
  readonly onUnitProgress?: (unit: Assign, report: StepReport, totalSteps: number) => void;
  /** Training of the unit is over (finished, stopped or cancelled). */
  readonly onUnitEnd?: (unit: Assign) => void;
  readonly onResult?: (
    unit: Assign,
    verdict: 'accepted' | 'rejected' | 'lost',
    samples: number,
    standing?: VolunteerStanding,
  ) => void;
  /** The volunteer's limits: a share of the CPU, or only while the machine is idle. */
  readonly pacing?: Pacing;
  /** Where a worker that may die mid-unit saves its progress for a later hand-in (a tab). */
  readonly checkpoints?: UnitCheckpoints;
}

export interface WorkerSummary {
  readonly units: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly samples: number;
  readonly end: 'done' | 'max-units' | 'stopped';
}

/**
 * Refusals that reconnecting cannot cure: the token or the protocol version. Every other
 * refusal (a fault in one of this worker's own frames, a limit, a coordinator failure) is
 * reported and retried with backoff: it is not a reason to stop volunteering.
 */
const FATAL_REFUSALS: ReadonlySet<ErrorCode> = new Set(['UNAUTHORIZED', 'UNSUPPORTED_VERSION']);

class StopWorker extends Error {
  constructor(readonly end: WorkerSummary['end']) {
    super(end);
  }
}

/**
 * The volunteer loop: connect, hello, ask for work, fetch, train, upload, repeat; reconnect
 * with capped exponential backoff and jitter when the coordinator goes away.
 */
export async function runVolunteer(options: VolunteerOptions): Promise<WorkerSummary> {
  const { log, signal, blobs, checkpoints } = options;
  const base = httpBase(options.url);
  const stats = { units: 0, accepted: 0, rejected: 0, samples: 0 };
  const backoff = options.reconnect ?? { initialMs: 500, maxMs: 30_000 };
  let failures = 0;
  let workerId = '';
  let lastNoWorkReason: string | undefined;
  // Which data blob each shard had when last assigned: the shards whose data is at hand.
  const shardData = new Map<number, string>();
  // The optimizer's state after the last unit: the next unit of the same shard resumes it.
  let carried: { shard: number; carry: OptimizerCarry; version?: number } | undefined;

  // The last connection: when it heard the job end, losing it afterwards ends the loop.
  let current: ControlSocket | undefined;
  const session = async (): Promise<never> => {
    const connection = await options.connect(socketUrl(options.url), options.token);
    current = connection;
    try {
      connection.send({
        type: 'hello',
        protocol: PROTOCOL_VERSION,
        ...(options.token !== undefined ? { token: options.token } : {}),
        name: options.name,
        capabilities: {
          backend: options.backend,
          threads: options.threads,
          gpu: options.gpu,
          samples_per_s: options.samplesPerSecond,
        },
      });
      const welcome = await connection.next();
      if (welcome.type === 'error') throw new ProtocolError(welcome.code, welcome.message);
      if (welcome.type !== 'welcome')
        throw new ProtocolError('BAD_MESSAGE', `expected welcome, got ${welcome.type}`);
      workerId = welcome.worker_id;
      log.info({ worker: welcome.worker_id, url: options.url }, 'connected');
      for (;;) {
        if (signal?.aborted) throw new StopWorker('stopped');
        if (options.maxUnits !== undefined && stats.units >= options.maxUnits)
          throw new StopWorker('max-units');
        await options.pacing?.beforeWork(signal);
        if (signal?.aborted) throw new StopWorker('stopped');
        const cached = [...shardData].filter(([, sha]) => blobs.holds(sha)).map(([shard]) => shard);
        connection.send({
          type: 'request_work',
          ...(cached.length > 0 ? { cached_shards: cached.slice(0, 64) } : {}),
        });
        const message = await connection.next();
        if (message.type !== 'error') failures = 0;
        if (message.type === 'no_work') {
          if (message.done) throw new StopWorker('done');
          if (message.reason !== undefined && message.reason !== lastNoWorkReason)
            log.warn({ retry_after_ms: message.retry_after_ms }, message.reason);
          lastNoWorkReason = message.reason;
          await pause(message.retry_after_ms, signal);
          if (connection.jobDone) throw new StopWorker('done');
        } else if (message.type === 'assign') {
          lastNoWorkReason = undefined;
          await runUnit(connection, welcome, message);
        } else if (message.type === 'error') {
          throw new ProtocolError(message.code, message.message);
        }
      }
    } finally {
      connection.close();
    }
  };

  const runUnit = async (connection: ControlSocket, welcome: Welcome, assign: Assign): Promise<void> => {
    const unitLog = log.child({ unit: assign.unit_id, shard: assign.shard });
    shardData.set(assign.shard, assign.data_blob.sha256);
    const [baseBytes, dataBytes] = [
      await blobs.get(assign.base_blob),
      await blobs.get(assign.data_blob, 'data'),
    ];
    const baseWeights = decodeFFF(baseBytes, `base blob of ${assign.unit_id}`);
    const expected = {
      depth: assign.subtree_depth,
      leafWidth: assign.leaf_width,
      inputWidth: assign.input_width,
      outputWidth: assign.output_width,
      activation: assign.activation,
    };
    if (!sameShape(baseWeights.shape, expected))
      throw new ProtocolError(
        'BAD_MESSAGE',
        `base blob of ${assign.unit_id} does not have the assigned shape`,
      );
    let data: TrainingSet = decodeShardData(dataBytes, `data blob of ${assign.unit_id}`);
    let path: PathContext | undefined;
    if (assign.top !== undefined) {
      const along = assignedPath(
        assign,
        await blobs.get(assign.top.blob),
        await blobs.get(assign.top.siblings_blob),
        data.n,
      );
      path = along.path;
      data = { ...data, siblings: along.siblings };
    }
    const totalSteps = Math.max(
      1,
      Math.round(assign.recipe.local_epochs * Math.ceil(data.n / assign.recipe.batch)),
    );
    let cancelled: string | undefined;
    connection.onCancel = (unitId, reason) => {
      if (unitId === assign.unit_id) cancelled = reason;
    };
    let last: StepReport | undefined;
    let stepsDone = 0;
    let savedSamples = 0;
    const beat = (): void =>
      connection.send({
        type: 'heartbeat',
        unit_id: assign.unit_id,
        lease_token: assign.lease_token,
        step: Math.min(stepsDone, totalSteps),
        total_steps: Math.max(1, totalSteps),
        ...(last !== undefined && Number.isFinite(last.loss) ? { loss: last.loss } : {}),
        ...(savedSamples > 0 ? { saved_samples: savedSamples } : {}),
      });
    const heartbeat = setInterval(beat, welcome.heartbeat_ms);
    unitLog.info(
      { samples: data.n, epochs: Number(assign.recipe.local_epochs.toFixed(2)), batch: assign.recipe.batch },
      'training unit',
    );
    let result;
    try {
      const { options: recipe, window } = assignedRecipe(assign);
      result = await trainUnit(
        baseWeights,
        data,
        recipe,
        {
          yieldEvery: 1,
          reportEvery: 10,
          onStep: (report) => {
            last = report;
            stepsDone = report.epoch * report.stepsPerEpoch + report.stepInEpoch;
            options.onUnitProgress?.(assign, report, totalSteps);
          },
          shouldStop: () =>
            cancelled !== undefined || signal?.aborted === true || options.pacing?.handIn === true,
          ...(options.pacing !== undefined ? { betweenSteps: () => options.pacing!.betweenSteps() } : {}),
          ...(carried?.shard === assign.shard && assign.recipe.fresh_optimizer !== true
            ? { resumeOptimizer: { ...carried.carry, momentum: carried.version === assign.base_version } }
            : {}),
          onOptimizerState: (carry) => (carried = { shard: assign.shard, carry }),
          ...(checkpoints !== undefined
            ? {
                checkpoint: {
                  everyMs: checkpoints.everyMs,
                  now: () => Date.now(),
                  save: async (partial) => {
                    if (partial.samples < assign.recipe.batch) return;
                    await checkpoints.save({
                      assign,
                      workerId,
                      body: encodeUnitDelta(partial.delta, partial.pathDelta),
                      metrics: {
                        train_loss: partial.finalLoss,
                        samples: partial.samples,
                        seconds: partial.seconds,
                      },
                    });
                    savedSamples = partial.samples;
                    beat();
                  },
                },
              }
            : {}),
        },
        window,
        path,
      );
    } finally {
      clearInterval(heartbeat);
      connection.onCancel = () => undefined;
      options.onUnitEnd?.(assign);
    }

    if (cancelled !== undefined) {
      await checkpoints?.clear();
      unitLog.warn({ reason: cancelled }, 'unit cancelled by the coordinator');
      return;
    }
    // Stopping after a minibatch or more: what was trained goes up as a partial result.
    const handedIn = signal?.aborted === true || options.pacing?.handIn === true;
    const partial = result.stopped && result.samples >= assign.recipe.batch && handedIn;
    if (result.stopped && !partial) {
      connection.send({
        type: 'release',
        unit_id: assign.unit_id,
        lease_token: assign.lease_token,
        reason: 'worker stopping',
      });
      await checkpoints?.clear();
      unitLog.info('unit handed back');
      if (signal?.aborted === true) throw new StopWorker('stopped');
      return;
    }
    const samples = result.samples;
    stats.units++;
    const answer = await uploadResult({
      base,
      ...(options.token !== undefined ? { token: options.token } : {}),
      workerId,
      assign,
      body: encodeUnitDelta(result.delta, result.pathDelta),
      metrics: {
        train_loss: Number.isFinite(result.finalLoss) ? result.finalLoss : 0,
        samples,
        seconds: result.seconds,
      },
      log,
      ...(signal ? { signal } : {}),
    });
    // Kept until the answer: a tab that dies during the upload hands in the checkpoint next time.
    await checkpoints?.clear();
    const verdict = answer.status;
    if (answer.version !== undefined && carried?.shard === assign.shard) carried.version = answer.version;
    options.onResult?.(assign, verdict, samples, answer.standing);
    if (verdict === 'accepted') {
      stats.accepted++;
      stats.samples += samples;
    } else stats.rejected++;
    const done = partial ? { done: `${Math.min(stepsDone, totalSteps)}/${totalSteps} steps` } : {};
    const told = answer.standing;
    const standing = told
      ? {
          credit: told.credit,
          rank: `${told.rank} of ${told.volunteers}`,
          job: `${(told.jobProgress * 100).toFixed(1)}%`,
        }
      : {};
    unitLog.info(
      { verdict, samples, seconds: Math.round(result.seconds * 10) / 10, ...done, ...standing },
      partial ? 'partial unit sent' : 'unit finished',
    );
    if (partial && signal?.aborted === true) throw new StopWorker('stopped');
  };

  for (;;) {
    try {
      await session();
    } catch (error) {
      if (error instanceof StopWorker) return { ...stats, end: error.end };
      if (current?.jobDone === true) return { ...stats, end: 'done' };
      if (error instanceof ProtocolError && FATAL_REFUSALS.has(error.code)) throw error;
      if (signal?.aborted) return { ...stats, end: 'stopped' };
      failures++;
      const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** (failures - 1));
      const wait = ceiling / 2 + Math.random() * (ceiling / 2);
      const retry_in_ms = Math.round(wait);
      if (error instanceof ProtocolError)
        log.warn(
          { code: error.code, err: error.message, retry_in_ms },
          `coordinator refused: ${error.code} ${error.message}; reconnecting`,
        );
      else {
        const hint = failures === 1 ? unreachableHint(options.url, error as Error) : undefined;
        log.warn(
          { err: (error as Error).message, retry_in_ms, ...(hint !== undefined ? { hint } : {}) },
          'coordinator unreachable; reconnecting',
        );
      }
      await pause(wait, signal);
      if (signal?.aborted) return { ...stats, end: 'stopped' };
    }
  }
}
