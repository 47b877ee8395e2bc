export const UNIT_STATES = ['ready', 'leased', 'submitted', 'accepted', 'rejected', 'expired'] as const;
export type UnitState = (typeof UNIT_STATES)[number];

export interface Shard {
  id: number;
  version: number;
  samples: number;
  dataBlob: string;
  weightsBlob: string;
  budgetSamples: number;
  trainedSamples: number;
  /** Outer-optimizer momentum of this shard's subtree (absent before the first merge). */
  momentumBlob?: string | null;
  /** The shard's held-out validation samples, kept by the coordinator. */
  valBlob?: string | null;
  /** Validation loss of the shard's current subtree. */
  valLoss?: number | null;
  /** The lowest validation loss the shard has had: the tolerance is measured from it. */
  /** The best validation measure merged so far in the training phase `bestPhase`. */
  bestValLoss?: number | null;
  bestPhase?: string | null;
  /** Slow top: the cached sibling outputs of the shard's training samples. */
  contextBlob?: string | null;
}

export const JOB_PHASES = ['pretraining', 'routing', 'training', 'done'] as const;
export type JobPhase = (typeof JOB_PHASES)[number];

export interface JobRow {
  /** The job's settings as JSON, validated by whoever reads them. */
  config: string;
  phase: JobPhase;
  /** The pretrained full tree, whose top K levels are frozen. */
  treeBlob: string | null;
  /** When an operator paused the job (no new leases), or null. */
  pausedMs: number | null;
  createdMs: number;
  updatedMs: number;
}

/** Slow top: the top K levels as they are now, and the ones the shards' data was routed by. */
export interface TopRow {
  blob: string;
  /** Path-node updates merged so far. */
  version: number;
  /** Re-routes so far (0: the first routing). */
  routingVersion: number;
  routingBlob: string;
  /** The top version the data was last routed by. */
  routedVersion: number;
}

export interface EvalRow {
  id: number;
  atMs: number;
  accepted: number;
  hardTestAcc: number;
  valLoss: number;
  checkpointBlob: string;
}

export interface EventRow {
  id: number;
  atMs: number;
  kind: string;
  data: unknown;
}

/** The stretch of its shard's schedule a unit trains, and its passes over the shard. */
export interface UnitWindow {
  from: number;
  to: number;
  epochs: number;
}

/**
 * Where a unit comes from: the unit first cut at that place in the shard's schedule (its
 * `origin`), the part of it that was left after a partial result (`part`: where it starts,
 * parts per million of the schedule; null for the cut itself), and how many times a refused
 * result had it reissued (`retry`). The unit's id is written from these and never read back.
 */
export interface UnitLineage {
  origin: string;
  part: number | null;
  retry: number;
}

export interface NewUnit extends Partial<UnitLineage> {
  /** Unique; written from its lineage (core/unit-lineage.ts). A unit given no lineage is its own origin. */
  id: string;
  shard: number;
  baseVersion: number;
  createdMs: number;
  /** The stretch of the shard's schedule it trains (units of older jobs: their round's). */
  window?: UnitWindow | null;
  /**
   * The share of its window by which its merged result moves the shard's schedule on: 1 when
   * each result is a step of its own (null: 1), 1/N when the N units in flight together are
   * averaged into one step (merge strategy).
   */
  share?: number | null;
  /**
   * How far its cut moved the shard's schedule (null: to the end of its window). Retries and
   * the rest of a unit keep the original's, so cutting the same stretch again moves nothing.
   */
  cutTo?: number | null;
  /** A backup copy of this unit, leased to a faster volunteer while a slow one still holds it. */
  backupOf?: string | null;
  /** A retry: the volunteers (standing owners) whose results for this stretch were rejected. */
  rejectedBy?: readonly string[] | null;
}

export interface Unit extends NewUnit {
  origin: string;
  part: number | null;
  retry: number;
  state: UnitState;
  workerId: string | null;
  leaseToken: string | null;
  deadlineMs: number | null;
  attempts: number;
  /** The subtree weights it was leased from (kept while a result is held for a quorum). */
  baseBlob: string | null;
  /** Quorum mode: the worker whose valid result waits for a second, agreeing one. */
  heldBy: string | null;
  heldBlob: string | null;
  window: UnitWindow | null;
  /** Slow top: the top version it was leased with. */
  baseTop: number | null;
  /** The shard's training samples when it was leased (re-routing changes them). */
  baseSamples: number | null;
  /** When its current lease began. */
  leasedMs: number | null;
}

export interface WorkerInfo {
  id: string;
  name: string;
  tokenHash: string;
  backend: string;
  lastSeenMs: number;
}

export interface Worker extends WorkerInfo {
  unitsDone: number;
  credit: number;
  rejections: number;
}

export interface AcceptInput {
  unitId: string;
  workerId: string;
  shard: number;
  baseVersion: number;
  deltaBlob: string;
  /** Samples the unit trained: added to the shard's trained_samples and the worker's credit. */
  samples: number;
  /**
   * What the shard's trained_samples grows by, when not `samples`: a unit leased before a
   * re-route trained the shard at its old size, and counts for its share of the schedule.
   */
  progress?: number;
  /** Quorum mode: the worker whose held result this one agreed with, credited the same. */
  alsoCredit?: string | null;
  now: number;
  /** The shard after merging this delta, written in the same transaction. */
  merged?: {
    weightsBlob: string;
    momentumBlob: string;
    /** The served model's loss on the shard's validation slice. */
    valLoss: number;
    /** The validation measure of the unit's training phase, and that phase. */
    measure: number;
    phase: string;
  };
}

export interface RejectInput {
  unitId: string;
  workerId: string;
  /** The acceptance rule that refused it (a bounded label). */
  rule: string;
  reason: string;
  now: number;
}

export interface ResultRow {
  unitId: string;
  workerId: string;
  shard: number;
  baseVersion: number;
  mergedVersion: number | null;
  status: 'accepted' | 'rejected';
  rule: string | null;
  reason: string | null;
  deltaBlob: string | null;
  samples: number;
  receivedMs: number;
}

export interface ResultCounts {
  accepted: number;
  rejected: number;
}

export interface ShardActivity extends ResultCounts {
  shard: number;
  leased: number;
  /** Mean versions between an accepted result's base and the version it merged into (null: none). */
  meanStaleness: number | null;
}

/** A volunteer's token: only its SHA-256 is stored. */
export interface TokenRow {
  id: string;
  hash: string;
  name: string;
  createdMs: number;
  revokedMs: number | null;
}

export interface Verdict {
  status: 'accepted' | 'rejected';
  /** The rule that rejected it (null when accepted). */
  rule: string | null;
  receivedMs: number;
}

/** Persistence for the coordinator. Time is always passed in; nothing reads the clock. */
export interface Store {
  upsertShard(shard: Shard): void;
  getShard(id: number): Shard | undefined;
  listShards(): Shard[];
  createUnit(unit: NewUnit): void;
  getUnit(id: string): Unit | undefined;
  /**
   * The oldest 'ready' unit that `owner` (the volunteer behind `workerId`, whose further
   * connections are `<owner>-2`…) did not already compute (quorum) becomes 'leased' to
   * `workerId` with `token`, within the oldest round one of `preferredShards` first, and a
   * retry of the owner's own rejected result last; undefined if none.
   */
  leaseUnit(
    workerId: string,
    now: number,
    leaseMs: number,
    token: string,
    preferredShards?: readonly number[],
    owner?: string,
  ): Unit | undefined;
  /**
   * Extends the deadline to now + leaseMs, never past `lifetimeMs` after the lease began.
   * False means the lease was lost (wrong token, not leased, past its deadline or lifetime).
   */
  renewLease(unitId: string, token: string, now: number, leaseMs: number, lifetimeMs?: number): boolean;
  /** leased -> ready (attempts + 1), token-fenced: the worker hands the unit back. */
  releaseUnit(unitId: string, token: string): boolean;
  /**
   * Quorum mode: leased -> ready with the sender's valid delta held, token-fenced; the unit is
   * leased next to another worker, from the same base. False means the lease was lost.
   */
  holdResult(unitId: string, token: string, workerId: string, deltaBlob: string): boolean;
  /** leased -> submitted, token-fenced; false means the lease was lost. */
  submitResult(unitId: string, token: string, now: number): boolean;
  /** One transaction; returns the shard's new version, or undefined on replay / unknown unit. */
  acceptResult(input: AcceptInput): number | undefined;
  /** One transaction; false on replay / unknown unit. */
  rejectResult(input: RejectInput): boolean;
  getResult(unitId: string): ResultRow | undefined;
  /** Leased units past their deadline go back to 'ready' (attempts + 1, token cleared). */
  expireLeases(now: number): number;
  unitsByState(): Record<UnitState, number>;
  /** Units leased to `workerId` now. */
  leasesHeldBy(workerId: string): number;
  /** Samples and time from lease to result (coordinator's clock) of the worker's latest accepted unit. */
  lastThroughput(workerId: string): { samples: number; ms: number } | undefined;
  /** Who holds a lease now, on which shard. */
  leaseHolders(): { workerId: string; shard: number }[];
  /** Per shard, how far units have been cut from its schedule (the largest cutTo, else window end). */
  cutProgress(): Map<number, number>;
  setUnitWindow(id: string, window: UnitWindow): void;
  upsertWorker(worker: WorkerInfo): void;
  getWorker(id: string): Worker | undefined;
  listWorkers(): Worker[];
  /** Workers by credit, one page. */
  workersPage(offset: number, limit: number): Worker[];
  workerCount(): number;
  /** How many workers have more credit than `credit`. */
  workersAboveCredit(credit: number): number;
  listUnits(): Unit[];
  listResults(): ResultRow[];
  resultCounts(): ResultCounts;
  /** Leased units and verdicts per shard, for shards that have any. */
  shardActivity(): ShardActivity[];
  /** Rejections by the rule that made them. */
  rejectionsByRule(): { rule: string; n: number }[];
  /** The newest rejections, oldest first. */
  recentRejections(limit: number): ResultRow[];
  /** Samples and results accepted at or after `sinceMs`. */
  acceptedSince(sinceMs: number): { results: number; samples: number; firstMs: number | null };
  appendEvent(kind: string, data: unknown, now: number): number;
  eventsAfter(id: number, limit: number): EventRow[];
  /** The id of the newest event (0 when there is none). */
  lastEventId(): number;
  getJob(): JobRow | undefined;
  /** Creates the job row once; later calls change nothing and return false. */
  createJob(config: string, now: number): boolean;
  setJobPhase(phase: JobPhase, now: number, treeBlob?: string): void;
  /** Rewrites the stored job's settings (only operational ones may change: coordinator/job/config.ts). */
  setJobConfig(config: string, now: number): void;
  getTop(): TopRow | undefined;
  setTop(top: TopRow): void;
  addEval(row: Omit<EvalRow, 'id'>): number;
  listEvals(): EvalRow[];
  latestEval(): EvalRow | undefined;
  /**
   * Every blob a row still names that a model, a unit or a checkpoint can need: the tree,
   * each shard's data, weights, outer state, validation slice and context, the top, the
   * base and held result of units not yet finished, and the latest and the best checkpoint.
   */
  blobsInUse(): Set<string>;
  addToCounter(name: string, amount: number): void;
  createToken(token: Omit<TokenRow, 'revokedMs'>): void;
  listTokens(): TokenRow[];
  tokenByHash(hash: string): TokenRow | undefined;
  /** False when there is no such token or it was revoked already. */
  revokeToken(id: string, now: number): boolean;
  /** Whether any token that is not revoked exists: then every worker needs one. */
  hasActiveTokens(): boolean;
  getToken(id: string): TokenRow | undefined;
  /** Tokens created at or after `sinceMs` (open enrolment's global rate). */
  tokensCreatedSince(sinceMs: number): number;
  /** Pauses (a time) or resumes (null) the job: a paused job leases nothing. */
  setPaused(pausedMs: number | null, now: number): void;
  /** leased -> ready without counting an attempt (an operator took it back); the unit as it was. */
  cancelLease(unitId: string): Unit | undefined;
  /** The units leased now, the longest-held first. */
  leasedUnits(): Unit[];
  /**
   * A unit was merged: its backups (or the unit it backs up, and that one's other backups)
   * still ready or leased are superseded, never to be leased or merged; returns them as they were.
   */
  supersedeTwins(unitId: string): Unit[];
  /** The furthest start, in the shard's schedule, of a window merged into it (0 when none). */
  mergedFront(shard: number): number;
  /**
   * Units of `shard` still ready or leased (not held for quorum) whose window ends at or before
   * `by` are retired, never to be leased or merged; returns them as they were.
   */
  retireUnitsEndingBy(shard: number, by: number): Unit[];
  /**
   * Every unit leased to `workerId` (but those in `keep`) goes back to ready without counting
   * an attempt; how many.
   */
  releaseLeasesOf(workerId: string, keep?: readonly string[]): number;
  /** Keeps a lease until at least `untilMs`, heartbeats or not (token-fenced); false if not held. */
  holdLease(unitId: string, token: string, untilMs: number): boolean;
  /** The latest verdicts of a worker and of its further connections (`<id>-2`, …), newest first. */
  recentVerdicts(workerId: string, limit: number): Verdict[];
  /** Keeps the newest `keep` events; returns how many were deleted. */
  pruneEvents(keep: number): number;
  /**
   * Deletes rows of workers that never had a result and were last seen before `seenBeforeMs`,
   * except those in `keep` (connected now); returns how many.
   */
  pruneIdleWorkers(seenBeforeMs: number, keep: readonly string[]): number;
  counters(): Record<string, number>;
  /** Runs `fn` as one immediate transaction (nested calls become savepoints). */
  transaction<T>(fn: () => T): T;
  close(): void;
}
