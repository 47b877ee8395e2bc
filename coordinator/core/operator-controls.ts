/**
 * What an operator (the admin token) may do while the job runs: pause and resume leasing,
 * take a unit back from its worker, revoke a volunteer (and drop its sockets at once),
 * export the current model. Open enrolment issues volunteer tokens here too.
 */
import type { Logger } from 'pino';
import type { Clock } from '../../shared/clock.ts';
import type { TrainingJob } from '../job/training-job.ts';
import type { Store, TokenRow } from '../store/store.ts';
import { issueVolunteerToken } from './identity.ts';
import type { Presence } from './presence.ts';

/** What the socket layer does for the controls: tell a worker to stop a unit, or drop it. */
export interface WorkerSignals {
  cancelUnit(workerId: string, unitId: string, reason: string): void;
  dropWorker(workerId: string, reason: string): void;
}

export interface CancelOutcome {
  readonly unit: string;
  /** False when the unit was not leased: nothing to take back. */
  readonly cancelled: boolean;
  readonly worker: string | null;
}

export class OperatorControls {
  private pausedMs: number | null;

  constructor(
    private readonly job: TrainingJob,
    private readonly store: Store,
    private readonly presence: Presence,
    private readonly signals: WorkerSignals,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.pausedMs = store.getJob()?.pausedMs ?? null;
  }

  get paused(): boolean {
    return this.pausedMs !== null;
  }

  /** No new leases until resume(); units already leased finish and are merged as usual. */
  pause(): void {
    if (this.paused) return;
    const now = this.clock.now();
    this.pausedMs = now;
    this.store.transaction(() => {
      this.store.setPaused(now, now);
      this.store.appendEvent('paused', {}, now);
    });
    this.log.warn('job paused by the operator');
  }

  resume(): void {
    if (!this.paused) return;
    const now = this.clock.now();
    this.pausedMs = null;
    this.store.transaction(() => {
      this.store.setPaused(null, now);
      this.store.appendEvent('resumed', {}, now);
    });
    this.log.warn('job resumed by the operator');
  }

  /** Takes a leased unit back (ready again, no attempt counted); its worker is told to stop it. */
  cancelLease(unitId: string): CancelOutcome | undefined {
    if (this.store.getUnit(unitId) === undefined) return undefined;
    const before = this.store.cancelLease(unitId);
    if (before?.workerId == null) return { unit: unitId, cancelled: false, worker: null };
    const fields = { unit: unitId, shard: before.shard, worker: before.workerId };
    this.store.appendEvent('cancelled', fields, this.clock.now());
    this.log.warn(fields, 'unit taken back by the operator');
    this.signals.cancelUnit(before.workerId, unitId, 'cancelled by the operator');
    return { unit: unitId, cancelled: true, worker: before.workerId };
  }

  /** Revokes a volunteer token; its workers are dropped and their units go back to ready. */
  revoke(tokenId: string): TokenRow | undefined {
    if (!this.store.revokeToken(tokenId, this.clock.now())) return undefined;
    this.log.warn({ token: tokenId }, 'volunteer token revoked by the operator');
    this.enforceRevocations();
    return this.store.getToken(tokenId);
  }

  /** Drops connected workers whose token was revoked (here or by `arbor token revoke`). */
  enforceRevocations(): number {
    let dropped = 0;
    for (const worker of this.presence.all()) {
      if (worker.tokenId === undefined) continue;
      const token = this.store.getToken(worker.tokenId);
      if (token !== undefined && token.revokedMs === null) continue;
      const released = this.store.releaseLeasesOf(worker.id);
      this.store.appendEvent('revoked', { worker: worker.id, name: worker.name, released }, this.clock.now());
      this.signals.dropWorker(worker.id, 'the volunteer token was revoked');
      dropped++;
    }
    return dropped;
  }

  /** The current model (frozen top + every shard's subtree now) as an Arbor checkpoint. */
  exportModel(): Uint8Array {
    return this.job.evaluation.checkpoint();
  }

  /**
   * A volunteer token for a newcomer (open enrolment); undefined when `perHour` tokens were
   * issued in the last hour already.
   */
  enrol(name: string, perHour: number): { token: string; row: TokenRow } | undefined {
    const now = this.clock.now();
    if (this.store.tokensCreatedSince(now - 3_600_000) >= perHour) return undefined;
    const issued = issueVolunteerToken(this.store, name, now);
    this.store.appendEvent('enrolled', { token: issued.row.id, name }, now);
    return issued;
  }
}
