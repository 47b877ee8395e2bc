import type { Logger } from 'pino';
import { ProtocolError } from '../../proto/errors.ts';
import type { ResultMetrics, ResultResponse } from '../../proto/messages.ts';
import { decodeFFF, encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import { hardCrossEntropy } from '../../shared/fff/hard-loss.ts';
import type { FFFWeights } from '../../shared/fff/weights.ts';
import type { BlobStore } from '../blob-store.ts';
import type { TrainingJob } from '../job/training-job.ts';
import type { Shard, Store, Unit } from '../store/store.ts';
import { checkDelta } from './delta-check.ts';
import { OuterOptimizer } from './outer-optimizer.ts';

export interface ResultSubmission {
  readonly unitId: string;
  readonly workerId: string;
  readonly leaseToken: string;
  readonly body: Uint8Array;
  readonly metrics: ResultMetrics;
}

/** What the HTTP layer sends back: 200 for accepted, 422 with the error code otherwise. */
export type IntakeOutcome =
  | { readonly response: ResultResponse; readonly code?: undefined }
  | { readonly response: ResultResponse; readonly code: 'DELTA_INVALID' | 'DELTA_REJECTED' };

/** Where the seconds spent validating (decode, checks, validation loss) and merging go. */
export interface IntakeTimings {
  readonly validation?: (seconds: number) => void;
  readonly merge?: (seconds: number) => void;
}

type Verdict =
  | { ok: true; merged: FFFWeights; momentum: FFFWeights; valLoss: number; staleness: number }
  | { ok: false; code: 'DELTA_INVALID' | 'DELTA_REJECTED'; reason: string };

/**
 * Validates a worker's delta and merges it into its shard with the outer optimizer, or
 * records why not. Synchronous from the lease check to the commit, so no other message is
 * handled in between: the store transaction is the only place the shard changes.
 */
export class ResultIntake {
  constructor(
    private readonly job: TrainingJob,
    private readonly store: Store,
    private readonly blobs: BlobStore,
    private readonly log: Logger,
    private readonly now: () => number,
    private readonly timings: IntakeTimings = {},
  ) {}

  submit(sub: ResultSubmission): IntakeOutcome {
    const unit = this.store.getUnit(sub.unitId);
    if (unit === undefined) throw new ProtocolError('UNKNOWN_UNIT', `no unit ${sub.unitId}`);
    const recorded = this.store.getResult(sub.unitId);
    if (recorded !== undefined) {
      if (recorded.workerId !== sub.workerId)
        throw new ProtocolError('LEASE_LOST', `unit ${sub.unitId} was completed by another worker`);
      // An upload retried after a lost answer: the same answer, nothing merged twice.
      return recorded.status === 'accepted'
        ? {
            response: {
              status: 'accepted',
              ...(recorded.mergedVersion !== null ? { version: recorded.mergedVersion } : {}),
            },
          }
        : { response: { status: 'rejected', reason: recorded.reason ?? 'rejected' }, code: 'DELTA_REJECTED' };
    }
    if (unit.workerId !== sub.workerId)
      throw new ProtocolError('UNKNOWN_UNIT', `unit ${sub.unitId} is not leased to this worker`);
    if (unit.state !== 'leased' || unit.leaseToken !== sub.leaseToken || (unit.deadlineMs ?? 0) < this.now())
      throw new ProtocolError('LEASE_LOST', `the lease on unit ${sub.unitId} is no longer held`);
    this.store.addToCounter('model_bytes_in', sub.body.byteLength);

    const shard = this.store.getShard(unit.shard);
    if (shard === undefined)
      throw new ProtocolError('INTERNAL', `unit ${unit.id} names unknown shard ${unit.shard}`);
    const started = performance.now();
    const verdict = limitReason(this.judge(unit, shard, sub.body));
    const judged = performance.now();
    this.timings.validation?.((judged - started) / 1000);
    const now = this.now();
    if (!verdict.ok) {
      this.store.transaction(() => {
        this.store.rejectResult({ unitId: unit.id, workerId: sub.workerId, reason: verdict.reason, now });
        this.store.createUnit({
          id: `${unit.id}.${unit.attempts + 1}`,
          shard: unit.shard,
          baseVersion: shard.version,
          createdMs: unit.createdMs,
        });
        this.store.appendEvent(
          'rejected',
          {
            unit: unit.id,
            shard: unit.shard,
            worker: sub.workerId,
            code: verdict.code,
            reason: verdict.reason,
          },
          now,
        );
      });
      this.log.warn(
        { unit: unit.id, shard: unit.shard, worker: sub.workerId, reason: verdict.reason },
        'result rejected',
      );
      return { response: { status: 'rejected', reason: verdict.reason }, code: verdict.code };
    }
    const weightsBlob = this.blobs.put(encodeFFF(verdict.merged));
    const momentumBlob = this.blobs.put(encodeFFF(verdict.momentum));
    const deltaBlob = this.blobs.put(sub.body);
    const version = this.store.transaction(() => {
      const v = this.store.acceptResult({
        unitId: unit.id,
        workerId: sub.workerId,
        shard: unit.shard,
        baseVersion: unit.baseVersion,
        deltaBlob,
        samples: sub.metrics.samples,
        now,
        merged: { weightsBlob, momentumBlob, valLoss: verdict.valLoss },
      });
      if (v === undefined) throw new ProtocolError('LEASE_LOST', `unit ${unit.id} was finished meanwhile`);
      this.store.appendEvent(
        'accepted',
        {
          unit: unit.id,
          shard: unit.shard,
          worker: sub.workerId,
          version: v,
          staleness: verdict.staleness,
          val_loss: verdict.valLoss,
          train_loss: sub.metrics.train_loss,
          merge_ms: performance.now() - started,
        },
        now,
      );
      return v;
    });
    this.timings.merge?.((performance.now() - judged) / 1000);
    this.job.rememberSubtree(unit.shard, weightsBlob, verdict.merged);
    this.log.info(
      {
        unit: unit.id,
        shard: unit.shard,
        worker: sub.workerId,
        version,
        val_loss: verdict.valLoss,
        staleness: verdict.staleness,
      },
      'result merged',
    );
    return { response: { status: 'accepted', version } };
  }

  private judge(unit: Unit, shard: Shard, body: Uint8Array): Verdict {
    const { outer, validation } = this.job.config;
    let delta: FFFWeights;
    try {
      delta = decodeFFF(body, `result for ${unit.id}`);
    } catch (error) {
      return { ok: false, code: 'DELTA_INVALID', reason: (error as Error).message };
    }
    const check = checkDelta(delta, this.job.subtreeShape, validation.max_delta_norm);
    if (!check.ok) return { ok: false, code: 'DELTA_INVALID', reason: check.reason };
    const staleness = shard.version - unit.baseVersion;
    if (staleness > outer.max_staleness)
      return {
        ok: false,
        code: 'DELTA_REJECTED',
        reason: `stale: ${staleness} versions behind (limit ${outer.max_staleness})`,
      };
    const current = this.job.subtree(shard);
    const optimizer = new OuterOptimizer(
      { lr: outer.lr, momentum: outer.momentum, stalenessDiscount: outer.staleness_discount },
      current,
      this.job.momentum(shard),
    );
    const merged = optimizer.step(current, [{ delta, staleness }]);
    const valLoss = hardCrossEntropy(merged, this.job.validationSet(shard));
    const before = shard.valLoss ?? Infinity;
    if (!Number.isFinite(valLoss) || valLoss > before * (1 + validation.tolerance) + 1e-6)
      return {
        ok: false,
        code: 'DELTA_REJECTED',
        reason: `validation loss ${valLoss.toFixed(4)} is worse than ${before.toFixed(4)} beyond the tolerance ${validation.tolerance}`,
      };
    return { ok: true, merged, momentum: optimizer.momentum, valLoss, staleness };
  }
}

const MAX_REASON_CHARS = 1024;

function limitReason(verdict: Verdict): Verdict {
  return verdict.ok ? verdict : { ...verdict, reason: verdict.reason.slice(0, MAX_REASON_CHARS) };
}
