import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Assign, NoWork, Progress, Release } from '../proto/messages.ts';
import { autoBatchSize } from '../shared/fff/recipe.ts';
import type { BlobStore } from './blob-store.ts';
import type { TrainingJob } from './job/training-job.ts';
import type { Store } from './store/store.ts';

/** A stable 31-bit seed per unit id, so a reissued unit trains the same way. */
function unitSeed(jobSeed: number, unitId: string): number {
  let h = jobSeed >>> 0;
  for (let i = 0; i < unitId.length; i++) h = Math.imul(h ^ unitId.charCodeAt(i), 0x01000193) >>> 0;
  return h & 0x7fffffff;
}

/** Leases, heartbeats, hand-backs and expiry of work units. */
export class Scheduler {
  constructor(
    private readonly job: TrainingJob,
    private readonly store: Store,
    private readonly blobs: BlobStore,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {}

  assign(workerId: string): Assign | NoWork {
    const { config } = this.job;
    if (this.job.phase !== 'training')
      return {
        type: 'no_work',
        retry_after_ms: config.retry_after_ms,
        ...(this.job.phase === 'done' ? { done: true } : {}),
      };
    const token = randomBytes(18).toString('base64url');
    const unit = this.store.leaseUnit(workerId, this.now(), config.lease_ms, token);
    if (unit === undefined) return { type: 'no_work', retry_after_ms: config.retry_after_ms };
    const shard = this.store.getShard(unit.shard);
    if (shard === undefined) throw new Error(`unit ${unit.id} names unknown shard ${unit.shard}`);
    this.store.appendEvent(
      'leased',
      { unit: unit.id, shard: unit.shard, worker: workerId, attempt: unit.attempts },
      this.now(),
    );
    this.log.info(
      { unit: unit.id, shard: unit.shard, worker: workerId, base_version: unit.baseVersion },
      'unit leased',
    );
    const sub = this.job.subtreeShape;
    return {
      type: 'assign',
      unit_id: unit.id,
      lease_token: token,
      shard: unit.shard,
      base_version: unit.baseVersion,
      deadline_ms: unit.deadlineMs ?? 0,
      base_blob: { sha256: shard.weightsBlob, bytes: this.blobs.size(shard.weightsBlob) },
      data_blob: { sha256: shard.dataBlob, bytes: this.blobs.size(shard.dataBlob) },
      recipe: {
        local_epochs: config.local_epochs,
        batch: config.batch ?? autoBatchSize(shard.samples, config.local_epochs),
        lr: config.lr,
        optimizer: config.optimizer,
        hardening: config.hardening,
        leak: config.leak,
        seed: unitSeed(config.seed, unit.id),
      },
      subtree_depth: sub.depth,
      leaf_width: sub.leafWidth,
      input_width: sub.inputWidth,
      output_width: sub.outputWidth,
      activation: sub.activation,
    };
  }

  /** Extends the lease; false means it is lost and the worker should stop. */
  heartbeat(workerId: string, progress: Progress): boolean {
    const unit = this.store.getUnit(progress.unit_id);
    if (unit?.workerId !== workerId) return false;
    return this.store.renewLease(
      progress.unit_id,
      progress.lease_token,
      this.now(),
      this.job.config.lease_ms,
    );
  }

  release(workerId: string, release: Release): boolean {
    const unit = this.store.getUnit(release.unit_id);
    if (unit?.workerId !== workerId) return false;
    const released = this.store.releaseUnit(release.unit_id, release.lease_token);
    if (released) {
      this.store.appendEvent(
        'released',
        { unit: unit.id, shard: unit.shard, worker: workerId, reason: release.reason },
        this.now(),
      );
      this.log.info(
        { unit: unit.id, shard: unit.shard, worker: workerId, reason: release.reason },
        'unit handed back',
      );
    }
    return released;
  }

  /** Leases past their deadline go back to ready. */
  expire(): number {
    const expired = this.store.expireLeases(this.now());
    if (expired > 0) {
      this.store.appendEvent('expired', { units: expired }, this.now());
      this.log.warn({ units: expired }, 'leases expired; units back to ready');
    }
    return expired;
  }
}
