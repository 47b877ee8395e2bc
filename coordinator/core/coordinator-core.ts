import type { Logger } from 'pino';
import type { Assign, Heartbeat, Hello, NoWork, Release } from '../../proto/messages.ts';
import type { StepReport } from '../../shared/fff/trainer.ts';
import type { BlobStore } from '../store/blob-store.ts';
import type { TrainingJob } from '../job/training-job.ts';
import type { EvalRow, JobPhase, Store } from '../store/store.ts';
import type { Submission } from './acceptance.ts';
import type { Clock } from '../../shared/clock.ts';
import { type IntakeOutcome, type IntakeTimings, ResultIntake } from './intake.ts';
import { type Identity, identify, ownedWorkerId } from './identity.ts';
import { JobEndNotice } from './job-end-notice.ts';
import { Leases } from './leases.ts';
import { OperatorControls, type WorkerSignals } from './operator-controls.ts';
import { type ConnectedWorker, Presence } from './presence.ts';
import { standingOf, standingRefusal } from './standing.ts';
import { DEFAULT_RETENTION, type Retention, collectBlobs, pruneStore } from './upkeep.ts';

export interface CoreDeps {
  readonly job: TrainingJob;
  readonly store: Store;
  readonly blobs: BlobStore;
  readonly clock: Clock;
  readonly log: Logger;
  /** The job's shared worker token (`--token`), if any. */
  readonly sharedToken?: string;
  /** Open enrolment: newcomers may ask for a volunteer token (and then must use one). */
  readonly enrolment?: boolean;
  readonly retention?: Retention;
}

export interface PretrainProgress {
  /** The epoch under way, from 1. */
  readonly epoch: number;
  readonly epochs: number;
  /** Of all pretraining steps. */
  readonly fraction: number;
}

/** What the outside may watch: timings for /metrics, the end of the job; and signals for workers. */
export interface CoreListener extends Partial<IntakeTimings>, Partial<WorkerSignals> {
  finished?(final: EvalRow): void;
}

/**
 * The coordinator's rules in one place, free of sockets and HTTP: who is connected, which
 * unit each holds, which results are accepted, when to evaluate, when the job is done.
 * Time comes from the injected clock; state lives in the store.
 */
export class CoordinatorCore {
  readonly presence: Presence;
  readonly controls: OperatorControls;
  readonly done: Promise<EvalRow>;
  private readonly leases: Leases;
  private readonly intake: ResultIntake;
  private readonly listeners: CoreListener[] = [];
  private accepted: number;
  private dataBlobs = new Set<string>();
  private pretraining: PretrainProgress | undefined;
  private lastPruneMs = -Infinity;
  private lastEvalSamples = -Infinity;
  private endNotice: JobEndNotice | undefined;
  private resolveDone!: (row: EvalRow) => void;
  private rejectDone!: (error: Error) => void;

  constructor(private readonly deps: CoreDeps) {
    const { job, store, blobs, clock, log } = deps;
    this.presence = new Presence(clock.now());
    this.leases = new Leases(job, store, blobs, log, clock);
    this.intake = new ResultIntake(job, store, blobs, log, clock, {
      validated: (seconds) => this.listeners.forEach((l) => l.validated?.(seconds)),
      merged: (seconds) => this.listeners.forEach((l) => l.merged?.(seconds)),
      superseded: (workerId, unitId, reason) =>
        this.listeners.forEach((l) => l.cancelUnit?.(workerId, unitId, reason)),
    });
    this.controls = new OperatorControls(
      job,
      store,
      this.presence,
      {
        cancelUnit: (...args) => this.listeners.forEach((l) => l.cancelUnit?.(...args)),
        dropWorker: (...args) => this.listeners.forEach((l) => l.dropWorker?.(...args)),
      },
      clock,
      log,
    );
    this.accepted = store.resultCounts().accepted;
    this.done = new Promise<EvalRow>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    this.done.catch(() => undefined);
  }

  get job(): TrainingJob {
    return this.deps.job;
  }

  get phase(): JobPhase {
    return this.deps.job.phase;
  }

  listen(listener: CoreListener): void {
    this.listeners.push(listener);
  }

  /** How far pretraining has come, while it runs. */
  get pretrainProgress(): PretrainProgress | undefined {
    return this.pretraining;
  }

  /** Pretrains and routes whatever has not been yet; resolves when training can start. */
  async prepare(onPretrainStep?: (report: StepReport) => void): Promise<void> {
    let lastEpoch = -1;
    const onStep = (report: StepReport): void => {
      const fraction = (report.epoch + (report.stepInEpoch + 1) / report.stepsPerEpoch) / report.totalEpochs;
      this.pretraining = {
        epoch: report.epoch + 1,
        epochs: report.totalEpochs,
        fraction: Math.min(1, fraction),
      };
      if (report.epoch !== lastEpoch) {
        lastEpoch = report.epoch;
        const data = { epoch: report.epoch + 1, epochs: report.totalEpochs, phase: report.phase };
        this.deps.store.appendEvent('pretraining', data, this.deps.clock.now());
      }
      onPretrainStep?.(report);
    };
    try {
      await this.deps.job.prepare(onStep);
      this.pretraining = undefined;
    } catch (error) {
      this.deps.log.error({ err: error }, 'job preparation failed');
      this.rejectDone(error as Error);
      throw error;
    }
    this.refreshDataBlobs();
    const last = this.deps.store.latestEval();
    if (this.phase === 'done' && last !== undefined) this.finish(last);
    else this.finishIfComplete();
  }

  /** Who a bearer token is, here: undefined when it admits no one. */
  identify(bearer: string | undefined): Identity | undefined {
    return identify(this.deps.store, this.deps, bearer);
  }

  connect(hello: Hello, identity: Identity = { kind: 'open' }): ConnectedWorker {
    const { store, clock, log } = this.deps;
    const now = clock.now();
    const worker = this.presence.join(hello, now, ownedWorkerId(identity));
    this.endNotice?.heard(worker.id);
    store.upsertWorker({
      id: worker.id,
      name: hello.name,
      tokenHash: '',
      backend: hello.capabilities.backend,
      lastSeenMs: now,
    });
    store.appendEvent(
      'connected',
      { worker: worker.id, name: hello.name, capabilities: hello.capabilities },
      now,
    );
    log.info({ worker: worker.id, name: hello.name, ...hello.capabilities }, 'worker connected');
    return worker;
  }

  /** What happens to the leases of a worker whose socket closed: Leases.left. */
  disconnect(workerId: string, goingAway = false, onPurpose = goingAway): void {
    const { store, clock, log } = this.deps;
    const worker = this.presence.leave(workerId, clock.now(), onPurpose);
    if (worker === undefined) return;
    const info = store.getWorker(workerId);
    if (info !== undefined) store.upsertWorker({ ...info, lastSeenMs: worker.lastSeenMs });
    const released = this.leases.left(workerId, goingAway);
    if (released > 0)
      store.appendEvent(
        'released',
        { worker: workerId, name: worker.name, units: released, reason: 'went away' },
        clock.now(),
      );
    store.appendEvent('disconnected', { worker: workerId, name: worker.name }, clock.now());
    log.info({ worker: workerId, ...(released > 0 ? { released } : {}) }, 'worker disconnected');
  }

  /** A unit for the worker; within the oldest round, one of `cachedShards` if any is ready. */
  assign(workerId: string, cachedShards: readonly number[] = []): Assign | NoWork {
    const { clock, store, job } = this.deps;
    const now = clock.now();
    this.presence.seen(workerId, now);
    if (this.phase === 'training') {
      const retry = job.config.retry_after_ms;
      if (this.controls.paused)
        return { type: 'no_work', retry_after_ms: retry, reason: 'the operator paused the job' };
      const refusal = standingRefusal(standingOf(store, job.config.standing, workerId, now), now, retry);
      if (refusal !== undefined)
        return { type: 'no_work', retry_after_ms: refusal.retryAfterMs, reason: refusal.reason };
    }
    const worker = this.presence.get(workerId);
    return this.leases.assign(workerId, {
      ...(worker !== undefined
        ? { name: worker.name, claimedSamplesPerSecond: worker.samplesPerSecond }
        : {}),
      cachedShards,
      connected: this.presence.all().map((w) => w.id),
    });
  }

  heartbeat(workerId: string, heartbeat: Heartbeat): boolean {
    this.presence.seen(workerId, this.deps.clock.now());
    return this.leases.heartbeat(workerId, heartbeat);
  }

  release(workerId: string, release: Release): boolean {
    this.presence.seen(workerId, this.deps.clock.now());
    return this.leases.release(workerId, release, this.presence.get(workerId)?.name);
  }

  /** Refuses an upload whose sender does not hold the unit, before its body is read. */
  checkLease(lease: Pick<Submission, 'unitId' | 'workerId' | 'leaseToken'>): void {
    this.intake.checkLease(lease);
  }

  /** Judges and merges a result; evaluates on schedule and ends the job after the last unit. */
  submit(submission: Submission): IntakeOutcome {
    this.presence.seen(submission.workerId, this.deps.clock.now());
    const outcome = this.intake.submit(submission, this.presence.get(submission.workerId)?.name);
    this.leases.finished(submission.unitId);
    if (outcome.replay === true || this.phase !== 'training') return outcome;
    let evaluated = false;
    if (outcome.response.status === 'accepted' && outcome.response.held !== true) {
      this.accepted++;
      if (this.accepted % this.deps.job.config.eval_every === 0 && this.evaluationDue()) {
        this.deps.job.evaluation.evaluate();
        evaluated = true;
      }
    }
    // A rejection may have retired the last open unit: the job ends then too, never stalls.
    this.finishIfComplete(evaluated);
    return outcome;
  }

  /** Counts bytes served, as shard data (samples and their sibling outputs) or as model weights. */
  blobServed(sha256: string, bytes: number): void {
    // Re-routing (slow top) writes new data blobs: the set follows the shards.
    if (!this.dataBlobs.has(sha256)) this.refreshDataBlobs();
    this.deps.store.addToCounter(this.dataBlobs.has(sha256) ? 'data_bytes_out' : 'model_bytes_out', bytes);
  }

  private refreshDataBlobs(): void {
    this.dataBlobs = new Set(
      this.deps.store
        .listShards()
        .flatMap((s) => (s.contextBlob ? [s.dataBlob, s.contextBlob] : [s.dataBlob])),
    );
  }

  /** Leases past their deadline go back to ready; the sweeper calls this. */
  expire(): number {
    return this.leases.expire();
  }

  /** The sweeper's other chores: drop workers of revoked tokens; now and then, prune the store. */
  upkeep(): void {
    this.controls.enforceRevocations();
    if (this.phase === 'training') this.finishIfComplete();
    const now = this.deps.clock.now();
    const retention = this.deps.retention ?? DEFAULT_RETENTION;
    if (now - this.lastPruneMs < retention.everyMs) return;
    this.lastPruneMs = now;
    const connected = this.presence.all().map((w) => w.id);
    const pruned = pruneStore(this.deps.store, retention, now, connected);
    if (pruned.events + pruned.workers > 0) this.deps.log.info(pruned, 'pruned old events and idle workers');
    const graceMs = Math.max(retention.blobGraceMs, 2 * this.deps.job.config.lease_ms);
    const freed = collectBlobs(this.deps.store, this.deps.blobs, now - graceMs);
    if (freed.blobs > 0)
      this.deps.log.info({ ...freed, stored: this.deps.blobs.stats() }, 'collected unused blobs');
  }

  /**
   * Short units come back by the hundred: an evaluation (and a checkpoint) waits until a
   * hundredth of the job's budget has been trained since the last one.
   */
  private evaluationDue(): boolean {
    const { job, store } = this.deps;
    if (job.schedule.openUnits() === 0) return false;
    const shards = store.listShards();
    const trained = shards.reduce((sum, s) => sum + s.trainedSamples, 0);
    const budget = shards.reduce((sum, s) => sum + s.budgetSamples, 0);
    if (trained - this.lastEvalSamples < budget / 100) return false;
    this.lastEvalSamples = trained;
    return true;
  }

  private finishIfComplete(evaluated = false): void {
    const { job } = this.deps;
    const final = job.finishIfGoalMet(evaluated) ?? job.finishIfComplete();
    if (final !== undefined) this.finish(final);
  }

  /** Volunteers lost lately that have not connected since the job ended (0 while it runs). */
  get unheardOfEnd(): number {
    return this.endNotice?.waitingFor(this.deps.clock.now()) ?? 0;
  }

  private finish(final: EvalRow): void {
    const { store, clock } = this.deps;
    this.endNotice ??= new JobEndNotice(
      clock.now(),
      store.listWorkers(),
      this.presence.accountedFor(),
      this.presence.sinceMs,
    );
    this.resolveDone(final);
    this.listeners.forEach((l) => l.finished?.(final));
  }
}
