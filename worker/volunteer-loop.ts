/**
 * The volunteer loop, the same in Node and in a browser's Web Worker: the socket and the
 * blob source are handed in, so nothing here touches the file system or a Node module.
 * This file keeps the connection (hello, reconnect with backoff) and the loop of asking for
 * work; one unit's run is unit-run.ts, and its report unit-report.ts.
 */
import { type ErrorCode, ProtocolError } from '../proto/errors.ts';
import { PROTOCOL_VERSION } from '../proto/version.ts';
import { httpBase, socketUrl } from '../proto/routes.ts';
import { OptimizerCarrier } from '../shared/train-assignment.ts';
import { unreachableHint } from './connection-hint.ts';
import { type UnitOptions, runUnit } from './unit-run.ts';
import { type ControlSocket, pause } from './volunteer-ports.ts';

export interface VolunteerOptions extends UnitOptions {
  /** ws://HOST:PORT (the control socket is /v1/ws under it). */
  readonly url: string;
  readonly name: string;
  readonly backend: string;
  readonly gpu: boolean;
  readonly threads: number;
  readonly samplesPerSecond: number;
  /** Stop after this many units (default: until the job is done). */
  readonly maxUnits?: number;
  readonly connect: (url: string, token?: string) => Promise<ControlSocket>;
  readonly reconnect?: { readonly initialMs: number; readonly maxMs: number };
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
  const { log, signal, blobs } = options;
  const base = httpBase(options.url);
  const stats = { units: 0, accepted: 0, rejected: 0, samples: 0 };
  const backoff = options.reconnect ?? { initialMs: 500, maxMs: 30_000 };
  let failures = 0;
  let workerId = '';
  let lastNoWorkReason: string | undefined;
  // Which data blob each shard had when last assigned: the shards whose data is at hand.
  const shardData = new Map<number, string>();
  const carrier = new OptimizerCarrier();

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
          shardData.set(message.shard, message.data_blob.sha256);
          const outcome = await runUnit({ options, workerId, base, carrier }, connection, welcome, message);
          if (outcome.end === 'sent') {
            stats.units++;
            if (outcome.answer.status === 'accepted') {
              stats.accepted++;
              stats.samples += outcome.samples;
            } else stats.rejected++;
          }
          const stopped = outcome.end === 'handed-back' || (outcome.end === 'sent' && outcome.partial);
          if (stopped && signal?.aborted === true) throw new StopWorker('stopped');
        } else if (message.type === 'error') {
          throw new ProtocolError(message.code, message.message);
        }
      }
    } finally {
      connection.close();
    }
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
