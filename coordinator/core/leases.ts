import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Assign, Heartbeat, NoWork, Release } from '../../proto/messages.ts';
import type { BlobStore } from '../store/blob-store.ts';
import type { TrainingJob } from '../job/training-job.ts';
import type { Store } from '../store/store.ts';
import type { Clock } from '../../shared/clock.ts';
import { cutUnit } from './unit-cutter.ts';
import { type Asker, Stragglers } from './stragglers.ts';
import { SavedProgress } from './saved-progress.ts';
import { standingOwner } from './standing.ts';
import type { JobConfig } from '../job/config.ts';

export type { Asker } from './stragglers.ts';

/** A stable 31-bit seed per unit id, so a reissued unit trains the same way. */
function unitSeed(jobSeed: number, unitId: string): number {
  let h = jobSeed >>> 0;
  for (let i = 0; i < unitId.length; i++) h = Math.imul(h ^ unitId.charCodeAt(i), 0x01000193) >>> 0;
  return h & 0x7fffffff;
}

/** A volunteer's connections together hold at most this many times max_leases_per_worker. */
const VOLUNTEER_LEASE_FACTOR = 4;
/** Units are sized to take unit_seconds: a lease lives at most this many times that, or this many leases. */
const LIFETIME_PER_UNIT_TIME = 8;
const LIFETIME_LEASES = 10;

/**
 * How long heartbeats can keep a lease alive: long enough for a unit on a worker eight times
 * slower than it was sized for, so that idle holders cannot keep units out for hours.
 */
export const leaseLifetimeMs = (config: JobConfig): number =>
  Math.min(
    config.max_lease_ms,
    Math.max(LIFETIME_LEASES * config.lease_ms, LIFETIME_PER_UNIT_TIME * config.unit_seconds * 1000),
  );

/** Token-fenced leases on work units: assign, heartbeat, hand back, expire. */
export class Leases {
  private readonly stragglers: Stragglers;
  private readonly saved: SavedProgress;

  constructor(
    private readonly job: TrainingJob,
    private readonly store: Store,
    private readonly blobs: BlobStore,
    private readonly log: Logger,
    private readonly clock: Clock,
  ) {
    this.stragglers = new Stragglers(job, store, log);
    this.saved = new SavedProgress(job, store, log, clock);
  }

  /** Leases the oldest ready unit, or cuts a new one sized for the asker. */
  assign(workerId: string, asker: Asker = {}): Assign | NoWork {
    const { name, cachedShards = [] } = asker;
    const { config } = this.job;
    const phase = this.job.phase;
    if (phase !== 'training')
      return {
        type: 'no_work',
        retry_after_ms: config.retry_after_ms,
        ...(phase === 'done' ? { done: true } : {}),
      };
    if (!this.mayLeaseMore(workerId)) return { type: 'no_work', retry_after_ms: config.retry_after_ms };
    const now = this.clock.now();
    const token = randomBytes(18).toString('base64url');
    const owner = standingOwner(workerId);
    let unit = this.store.leaseUnit(workerId, now, config.lease_ms, token, cachedShards, owner);
    if (unit !== undefined) unit = this.stragglers.refit(unit, workerId, asker);
    else if (this.cut(workerId, asker, now) || this.stragglers.backUp(workerId, asker, now))
      unit = this.store.leaseUnit(workerId, now, config.lease_ms, token, cachedShards, owner);
    if (unit === undefined) return this.noWork();
    const shard = this.store.getShard(unit.shard);
    if (shard === undefined) throw new Error(`unit ${unit.id} names unknown shard ${unit.shard}`);
    const fields = { unit: unit.id, shard: unit.shard, worker: workerId };
    this.store.appendEvent('leased', { ...fields, name, attempt: unit.attempts }, now);
    this.log.info({ ...fields, base_version: unit.baseVersion }, 'unit leased');
    const sub = this.job.subtreeShape;
    const top = this.job.top.assigned(shard);
    const baseBlob = unit.baseBlob ?? shard.weightsBlob;
    // What the volunteer will fetch is kept a while even once superseded (BlobStore.collect).
    for (const blob of [baseBlob, shard.dataBlob, top?.blob.sha256, top?.siblings_blob.sha256])
      if (blob !== undefined) this.blobs.touch(blob);
    return {
      type: 'assign',
      unit_id: unit.id,
      lineage: {
        origin: unit.origin,
        ...(unit.part === null ? {} : { part: unit.part }),
        retry: unit.retry,
      },
      lease_token: token,
      shard: unit.shard,
      base_version: unit.baseVersion,
      deadline_ms: unit.deadlineMs ?? 0,
      base_blob: { sha256: baseBlob, bytes: this.blobs.size(baseBlob) },
      data_blob: { sha256: shard.dataBlob, bytes: this.blobs.size(shard.dataBlob) },
      recipe: {
        local_epochs: this.job.schedule.windowOf(unit).epochs,
        batch: this.job.schedule.batchOf(shard),
        lr: config.lr,
        optimizer: config.optimizer,
        hardening: config.hardening,
        leak: config.leak,
        seed: unitSeed(config.seed, unit.id),
        ...(config.validation.quorum > 1 ? { fresh_optimizer: true } : {}),
        schedule: this.job.schedule.scheduleOf(unit),
      },
      subtree_depth: sub.depth,
      leaf_width: sub.leafWidth,
      input_width: sub.inputWidth,
      output_width: sub.outputWidth,
      activation: sub.activation,
      ...(top !== undefined ? { top } : {}),
    };
  }

  /** Nothing to lease: every unit is out, or every shard with work left has its crowd. */
  private noWork(): NoWork {
    const { config } = this.job;
    const cut = this.store.cutProgress();
    const waiting = this.store.listShards().some((s) => s.samples > 0 && (cut.get(s.id) ?? 0) < 1 - 1e-9);
    return {
      type: 'no_work',
      retry_after_ms: config.retry_after_ms,
      ...(waiting
        ? {
            reason: `every shard with work left has ${config.max_peers} units in flight (max_peers): waiting for one to come back`,
          }
        : {}),
    };
  }

  /** A new unit from the shards' schedules, sized for this worker; false when all is cut. */
  private cut(workerId: string, asker: Asker, now: number): boolean {
    const cut = this.store.cutProgress();
    const inFlight = new Map<number, number>();
    for (const { shard } of this.store.leaseHolders()) inFlight.set(shard, (inFlight.get(shard) ?? 0) + 1);
    const unit = cutUnit(this.job.config, this.store.listShards(), cut, {
      ...this.stragglers.speedOf(workerId, asker),
      cachedShards: asker.cachedShards ?? [],
      workers: this.competing(asker.connected ?? [workerId], cut),
      now,
      batch: (shard) => this.job.schedule.batchOf(shard),
      inFlight,
      share: (peers) => this.job.merge.share(peers),
    });
    if (unit === undefined) return false;
    this.store.createUnit(unit);
    return true;
  }

  /**
   * Workers that will want a unit of an open shard soon: the idle, and those busy on a shard
   * with budget left. One busy on a shard already cut through will want one later, if any.
   */
  private competing(connected: readonly string[], cut: ReadonlyMap<number, number>): number {
    const busyOnCutShard = new Set(
      this.store
        .leaseHolders()
        .filter((l) => (cut.get(l.shard) ?? 0) >= 1 - 1e-9)
        .map((l) => l.workerId),
    );
    return Math.max(1, connected.filter((id) => !busyOnCutShard.has(id)).length);
  }

  /**
   * One lease at a time; more (up to max_leases_per_worker) only for a worker measured fast:
   * its latest accepted unit came back within half a lease, by this coordinator's clock. A
   * volunteer's connections together hold at most VOLUNTEER_LEASE_FACTOR times that.
   */
  private mayLeaseMore(workerId: string): boolean {
    const owner = standingOwner(workerId);
    const ownerHeld = this.store.leaseHolders().filter((l) => standingOwner(l.workerId) === owner).length;
    if (ownerHeld >= VOLUNTEER_LEASE_FACTOR * this.job.config.max_leases_per_worker) return false;
    const held = this.store.leasesHeldBy(workerId);
    if (held === 0) return true;
    if (held >= this.job.config.max_leases_per_worker) return false;
    const turnaround = this.store.lastThroughput(workerId)?.ms;
    return turnaround !== undefined && turnaround <= this.job.config.lease_ms / 2;
  }

  /** Extends the lease; false means it is lost and the worker should stop. */
  heartbeat(workerId: string, heartbeat: Heartbeat): boolean {
    const unit = this.store.getUnit(heartbeat.unit_id);
    if (unit?.workerId !== workerId) return false;
    const renewed = this.store.renewLease(
      heartbeat.unit_id,
      heartbeat.lease_token,
      this.clock.now(),
      this.job.config.lease_ms,
      leaseLifetimeMs(this.job.config),
    );
    if (renewed) this.saved.heard(workerId, heartbeat);
    return renewed;
  }

  /**
   * The worker's socket closed. One that said it is going away (a closed browser tab) hands
   * its leases back at once, but for the parts of units it saved a checkpoint of (kept for its
   * next visit); one that merely lost its socket keeps them, since it may still upload over
   * HTTP. Returns how many units went back out.
   */
  left(workerId: string, goingAway: boolean): number {
    if (!goingAway) {
      // Reconnected, it says again what it has saved; gone for good, it is not remembered.
      this.saved.forgetWorker(workerId);
      return 0;
    }
    const kept = this.saved.holdFor(workerId, leaseLifetimeMs(this.job.config));
    return this.store.releaseLeasesOf(workerId, kept);
  }

  /** The unit's result arrived: no checkpoint of it is needed any more. */
  finished(unitId: string): void {
    this.saved.forget(unitId);
  }

  release(workerId: string, release: Release, name?: string): boolean {
    const unit = this.store.getUnit(release.unit_id);
    if (unit?.workerId !== workerId) return false;
    const released = this.store.releaseUnit(release.unit_id, release.lease_token);
    if (released) {
      this.saved.forget(unit.id);
      const fields = { unit: unit.id, shard: unit.shard, worker: workerId, reason: release.reason };
      this.store.appendEvent('released', { ...fields, name }, this.clock.now());
      this.log.info(fields, 'unit handed back');
    }
    return released;
  }

  /** Leases past their deadline go back to ready. */
  expire(): number {
    const now = this.clock.now();
    const expired = this.store.expireLeases(now);
    if (expired > 0) {
      this.store.appendEvent('expired', { units: expired }, now);
      this.log.warn({ units: expired }, 'leases expired; units back to ready');
    }
    return expired;
  }
}
