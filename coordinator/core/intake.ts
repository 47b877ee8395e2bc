import type { Logger } from 'pino';
import { type ErrorCode, ProtocolError } from '../../proto/errors.ts';
import type { ResultResponse } from '../../proto/messages.ts';
import { decodeFFF, encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import type { BlobStore } from '../store/blob-store.ts';
import type { TrainingJob } from '../job/training-job.ts';
import type { ResultRow, Store, Unit } from '../store/store.ts';
import { restOfUnit } from './unit-cutter.ts';
import { isOvertaken, retireOvertaken } from './overtaken.ts';
import { type AcceptanceRule, type Candidate, type Submission, judge } from './acceptance.ts';
import type { Clock } from '../../shared/clock.ts';
import type { TopStep } from '../top/slow-top.ts';
import { encodeOuterState } from '../merge/outer-state.ts';
import { standingOwner } from './standing.ts';
import { nextRetry } from './retries.ts';
import type { PathNodes } from '../../shared/fff/path-model.ts';

const pathNorm = (path: PathNodes): number => Math.hypot(...path.weight, ...path.bias);

/** What the HTTP layer sends back: 200 for accepted, the rule's error code otherwise. */
export type IntakeOutcome =
  | { readonly response: ResultResponse; readonly code?: undefined; readonly replay?: boolean }
  | { readonly response: ResultResponse; readonly code: ErrorCode; readonly replay?: boolean };

/** Seconds spent judging a delta (decode, checks, validation loss) and merging it. */
export interface IntakeTimings {
  validated(seconds: number): void;
  merged(seconds: number): void;
  /** A unit lost to its twin, or was overtaken: its worker should stop training it. */
  superseded(workerId: string, unitId: string, reason: string): void;
}

function replayed(recorded: ResultRow, workerId: string): IntakeOutcome {
  if (recorded.workerId !== workerId)
    throw new ProtocolError('LEASE_LOST', `unit ${recorded.unitId} was completed by another worker`);
  return recorded.status === 'accepted'
    ? {
        response: {
          status: 'accepted',
          ...(recorded.mergedVersion !== null ? { version: recorded.mergedVersion } : {}),
        },
        replay: true,
      }
    : {
        response: { status: 'rejected', reason: recorded.reason ?? 'rejected' },
        code: 'DELTA_REJECTED',
        replay: true,
      };
}

/**
 * Judges a worker's delta by the acceptance rules and merges it into its shard, or records
 * why not. Synchronous from the lease check to the commit, so no other message is handled
 * in between: the store transaction is the only place the shard changes.
 */
export class ResultIntake {
  constructor(
    private readonly job: TrainingJob,
    private readonly store: Store,
    private readonly blobs: BlobStore,
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly timings: IntakeTimings,
  ) {}

  /** `name` is the volunteer's, for the event log. */
  /**
   * The lease rules alone, from the upload's headers, before its body is read: throws the
   * rule's ProtocolError. A retried upload of a recorded result passes (it gets its answer).
   */
  checkLease(lease: Pick<Submission, 'unitId' | 'workerId' | 'leaseToken'>): void {
    const recorded = this.store.getResult(lease.unitId);
    if (recorded !== undefined) {
      replayed(recorded, lease.workerId);
      return;
    }
    const unit = this.store.getUnit(lease.unitId);
    // Lease rules read only the ids; the body and metrics are not there yet.
    const submission = {
      ...lease,
      body: new Uint8Array(0),
      metrics: { train_loss: 0, samples: 0, seconds: 0 },
    };
    const verdict = judge({ submission, now: this.clock.now(), unit, shard: undefined }, this.job, 'lease');
    if (!verdict.ok) throw new ProtocolError(verdict.rule.code, verdict.reason);
  }

  submit(submission: Submission, name?: string): IntakeOutcome {
    const recorded = this.store.getResult(submission.unitId);
    if (recorded !== undefined) return replayed(recorded, submission.workerId);
    const unit = this.store.getUnit(submission.unitId);
    const candidate: Candidate = {
      submission,
      now: this.clock.now(),
      unit,
      shard: unit === undefined ? undefined : this.store.getShard(unit.shard),
    };
    const lease = judge(candidate, this.job, 'lease');
    if (!lease.ok) throw new ProtocolError(lease.rule.code, lease.reason);
    if (candidate.shard === undefined)
      throw new ProtocolError('INTERNAL', `unit ${submission.unitId} names an unknown shard`);
    this.store.addToCounter('model_bytes_in', submission.body.byteLength);
    if (unit!.heldBlob !== null) candidate.held = decodeFFF(this.blobs.read(unit!.heldBlob));

    const started = performance.now();
    const verdict = judge(candidate, this.job, 'delta');
    this.timings.validated((performance.now() - started) / 1000);
    if (!verdict.ok) {
      this.reject(unit!, { id: submission.workerId, name }, verdict.rule, verdict.reason, candidate.now);
      return { response: { status: 'rejected', reason: verdict.reason }, code: verdict.rule.code };
    }
    if (this.job.config.validation.quorum > 1 && unit!.heldBy === null)
      return this.hold(unit!, candidate, name);
    const version = this.merge(unit!, candidate, name);
    this.timings.merged((performance.now() - started) / 1000);
    this.job
      .rerouteIfDue()
      .catch((error: unknown) =>
        this.log.error({ err: error }, 're-routing failed; it runs again after the next result'),
      );
    return { response: { status: 'accepted', version } };
  }

  /** Quorum mode: a first valid result waits for a second worker to compute the unit alike. */
  private hold(unit: Unit, candidate: Candidate, name: string | undefined): IntakeOutcome {
    const { workerId, leaseToken, body } = candidate.submission;
    const deltaBlob = this.blobs.put(body);
    const details = { unit: unit.id, shard: unit.shard, worker: workerId };
    this.store.transaction(() => {
      if (!this.store.holdResult(unit.id, leaseToken, workerId, deltaBlob))
        throw new ProtocolError('LEASE_LOST', `unit ${unit.id} was finished meanwhile`);
      this.store.appendEvent('held', { ...details, name }, candidate.now);
    });
    this.log.info(details, 'result held for a second worker');
    return { response: { status: 'accepted', held: true } };
  }

  private reject(
    unit: Unit,
    worker: { id: string; name: string | undefined },
    { name: rule, code }: AcceptanceRule,
    reason: string,
    now: number,
  ): void {
    const { store } = this;
    const workerId = worker.id;
    store.transaction(() => {
      store.rejectResult({ unitId: unit.id, workerId, rule, reason, now });
      // A backup copy (or the unit it backs up) still out carries the window on: no reissue.
      const twinOut = unit.backupOf != null || store.leasedUnits().some((u) => u.backupOf === unit.id);
      const overtaken = isOvertaken(this.job.config, store, unit.shard, unit.window);
      const retry =
        twinOut || overtaken
          ? undefined
          : nextRetry(unit, standingOwner(workerId), this.job.config.validation.max_retries);
      if (retry === undefined) {
        if (!twinOut) store.appendEvent('retired', { unit: unit.id, shard: unit.shard, overtaken }, now);
      } else
        store.createUnit({
          ...retry,
          shard: unit.shard,
          baseVersion: store.getShard(unit.shard)?.version ?? unit.baseVersion,
          createdMs: unit.createdMs,
          window: unit.window,
          share: unit.share ?? null,
          cutTo: unit.cutTo ?? null,
        });
      store.appendEvent(
        'rejected',
        { unit: unit.id, shard: unit.shard, worker: workerId, name: worker.name, code, rule, reason },
        now,
      );
    });
    this.log.warn({ unit: unit.id, shard: unit.shard, worker: workerId, rule, reason }, 'result rejected');
  }

  /**
   * Slow top: how the result's path delta moves the top, unless it is too stale or makes the
   * served model's validation loss worse beyond the tolerance (then only the subtree merges).
   */
  private topStep(unit: Unit, candidate: Candidate): TopStep | undefined {
    const { path } = candidate;
    // Hard-routed phases train leaves only: their path delta is zero and moves nothing.
    if (path === undefined || (path.weight.every((v) => v === 0) && path.bias.every((v) => v === 0)))
      return undefined;
    const step = this.job.top.step(unit, path);
    if ('dropped' in step) return step;
    const dropped = this.job.judgeTopStep(this.job.top.current()!, step.top, pathNorm(path));
    return dropped === undefined ? step : { dropped };
  }

  private merge(unit: Unit, candidate: Candidate, name: string | undefined): number {
    const { store, blobs } = this;
    const top = this.topStep(unit, candidate);
    const merged = candidate.merged!;
    const { workerId, metrics, body } = candidate.submission;
    const weightsBlob = blobs.put(encodeFFF(merged.weights));
    const momentumBlob = blobs.put(encodeOuterState(merged.state));
    const deltaBlob = blobs.put(body);
    const details = { unit: unit.id, shard: unit.shard, worker: workerId, val_loss: merged.valLoss };
    const window = this.job.schedule.windowOf(unit);
    const done = candidate.samplesDone ?? {
      samples: this.job.schedule.unitSamples(candidate.shard!, unit),
      fraction: 1,
    };
    const rest = done.fraction < 1 ? restOfUnit(unit, window, done.fraction) : undefined;
    let superseded: Unit[] = [];
    let overtaken: Unit[] = [];
    const version = store.transaction(() => {
      const v = store.acceptResult({
        unitId: unit.id,
        workerId,
        shard: unit.shard,
        baseVersion: unit.baseVersion,
        deltaBlob,
        samples: done.samples,
        // What the shard's schedule moved on: the part of the window trained, times the
        // unit's share of the step (1/N when N units in flight are averaged into one), at
        // today's budget; whole minibatches trained past the window's end move it no further.
        progress: Math.round(
          (unit.share ?? 1) * done.fraction * (window.to - window.from) * candidate.shard!.budgetSamples,
        ),
        alsoCredit: unit.heldBy,
        now: candidate.now,
        merged: {
          weightsBlob,
          momentumBlob,
          valLoss: merged.valLoss,
          measure: merged.measure,
          phase: merged.phase,
        },
      });
      if (v === undefined) throw new ProtocolError('LEASE_LOST', `unit ${unit.id} was finished meanwhile`);
      if (rest !== undefined) store.createUnit(rest);
      superseded = store.supersedeTwins(unit.id);
      for (const twin of superseded)
        store.appendEvent('superseded', { unit: twin.id, by: unit.id, worker: twin.workerId }, candidate.now);
      overtaken = retireOvertaken(this.job.config, store, unit.shard);
      const front = overtaken.length > 0 ? store.mergedFront(unit.shard) : 0;
      for (const left of overtaken)
        store.appendEvent(
          'overtaken',
          { unit: left.id, shard: unit.shard, worker: left.workerId, front },
          candidate.now,
        );
      const topVersion =
        top && 'top' in top ? this.job.top.commit(top, unit.shard, candidate.now) : undefined;
      if (topVersion !== undefined) this.job.topGuard.accepted(pathNorm(candidate.path!));
      store.appendEvent(
        'accepted',
        {
          ...details,
          name,
          version: v,
          staleness: candidate.staleness,
          train_loss: metrics.train_loss,
          ...(rest !== undefined ? { partial: Number(done.fraction.toFixed(4)), rest: rest.id } : {}),
          ...(topVersion !== undefined ? { top_version: topVersion } : {}),
          ...(top && 'dropped' in top ? { top_dropped: top.dropped } : {}),
          ...(unit.heldBy !== null
            ? { agreed_with: unit.heldBy, quorum_distance: candidate.quorumDistance }
            : {}),
        },
        candidate.now,
      );
      return v;
    });
    this.job.models.remember(unit.shard, weightsBlob, merged.weights);
    if (candidate.evidence !== undefined)
      this.job.credit.merged(unit.shard, candidate.evidence, { blob: weightsBlob, weights: merged.weights });
    for (const twin of superseded)
      if (twin.state === 'leased' && twin.workerId !== null)
        this.timings.superseded(twin.workerId, twin.id, 'a backup copy of this unit was merged first');
    for (const left of overtaken)
      if (left.state === 'leased' && left.workerId !== null)
        this.timings.superseded(left.workerId, left.id, "the shard's schedule has moved past this unit");
    this.log.info({ ...details, version, staleness: candidate.staleness }, 'result merged');
    return version;
  }
}
