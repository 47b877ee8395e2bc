import Database from 'better-sqlite3';
import { DatabaseError } from './database-error.ts';
import { migrate } from './migrations.ts';
import { toEval, toResult, toShard, toToken, toUnit, toWorker } from './sqlite-rows.ts';
import { prepareStatements } from './sqlite-statements.ts';
import { prepareTransactions } from './sqlite-transactions.ts';
import type {
  AcceptInput,
  EvalRow,
  EventRow,
  JobPhase,
  JobRow,
  NewUnit,
  RejectInput,
  ResultCounts,
  ResultRow,
  Shard,
  ShardActivity,
  Store,
  TokenRow,
  TopRow,
  Unit,
  UnitWindow,
  UnitState,
  Verdict,
  Worker,
  WorkerInfo,
} from './store.ts';
import { UNIT_STATES } from './store.ts';

export class SqliteStore implements Store {
  readonly db: Database.Database;
  /** Migrations applied when this instance opened the database. */
  readonly migrationsApplied: number;

  private readonly s;
  private readonly tx: ReturnType<typeof prepareTransactions>;

  constructor(path: string) {
    let opened: Database.Database | undefined;
    try {
      opened = new Database(path);
      if (path !== ':memory:') opened.pragma('journal_mode = WAL');
      opened.pragma('foreign_keys = ON');
      opened.pragma('busy_timeout = 5000');
      this.migrationsApplied = migrate(opened);
    } catch (error) {
      opened?.close();
      throw new DatabaseError(path, `cannot open the database: ${(error as Error).message}`);
    }
    this.db = opened;

    const db = this.db;
    this.s = prepareStatements(db);

    this.tx = prepareTransactions(db, this.s);
  }

  upsertShard(shard: Shard): void {
    this.s.upsertShard.run({
      id: shard.id,
      version: shard.version,
      samples: shard.samples,
      data_blob: shard.dataBlob,
      weights_blob: shard.weightsBlob,
      budget_samples: shard.budgetSamples,
      trained_samples: shard.trainedSamples,
      momentum_blob: shard.momentumBlob ?? null,
      val_blob: shard.valBlob ?? null,
      val_loss: shard.valLoss ?? null,
      best_val_loss: shard.bestValLoss ?? null,
      best_phase: shard.bestPhase ?? null,
      context_blob: shard.contextBlob ?? null,
    });
  }

  getShard(id: number): Shard | undefined {
    const row = this.s.getShard.get(id);
    return row === undefined ? undefined : toShard(row);
  }

  listShards(): Shard[] {
    return this.s.listShards.all().map(toShard);
  }

  createUnit(unit: NewUnit): void {
    const w = unit.window ?? null;
    this.s.createUnit.run(
      unit.id,
      unit.shard,
      unit.baseVersion,
      unit.createdMs,
      w?.from ?? null,
      w?.to ?? null,
      w?.epochs ?? null,
      unit.share ?? null,
      unit.cutTo ?? null,
      unit.backupOf ?? null,
      unit.rejectedBy ? JSON.stringify(unit.rejectedBy) : null,
      unit.origin ?? null,
      unit.part ?? null,
      unit.retry ?? 0,
    );
  }

  getUnit(id: string): Unit | undefined {
    const row = this.s.getUnit.get(id);
    return row === undefined ? undefined : toUnit(row);
  }

  leaseUnit(
    workerId: string,
    now: number,
    leaseMs: number,
    token: string,
    preferredShards: readonly number[] = [],
    owner = workerId,
  ): Unit | undefined {
    return this.tx.lease.immediate(workerId, now, leaseMs, token, preferredShards, owner);
  }

  renewLease(unitId: string, token: string, now: number, leaseMs: number, lifetimeMs = Infinity): boolean {
    const lifetime = Number.isFinite(lifetimeMs) ? lifetimeMs : Number.MAX_SAFE_INTEGER;
    return this.s.renew.run({ id: unitId, token, now, lease: leaseMs, lifetime }).changes === 1;
  }

  releaseUnit(unitId: string, token: string): boolean {
    return this.s.release.run(unitId, token).changes === 1;
  }

  holdResult(unitId: string, token: string, workerId: string, deltaBlob: string): boolean {
    return this.s.hold.run({ id: unitId, token, worker: workerId, blob: deltaBlob }).changes === 1;
  }

  submitResult(unitId: string, token: string, now: number): boolean {
    return this.s.submit.run(unitId, token, now).changes === 1;
  }

  acceptResult(input: AcceptInput): number | undefined {
    return this.tx.accept.immediate(input);
  }

  rejectResult(input: RejectInput): boolean {
    return this.tx.reject.immediate(input);
  }

  getResult(unitId: string): ResultRow | undefined {
    const row = this.s.getResult.get(unitId);
    return row === undefined ? undefined : toResult(row);
  }

  expireLeases(now: number): number {
    return this.s.expire.run(now).changes;
  }

  unitsByState(): Record<UnitState, number> {
    const counts = Object.fromEntries(UNIT_STATES.map((st) => [st, 0])) as Record<UnitState, number>;
    for (const { state, n } of this.s.countByState.all()) counts[state] = n;
    return counts;
  }

  upsertWorker(worker: WorkerInfo): void {
    this.s.upsertWorker.run({
      id: worker.id,
      name: worker.name,
      token_hash: worker.tokenHash,
      backend: worker.backend,
      last_seen_ms: worker.lastSeenMs,
    });
  }

  getWorker(id: string): Worker | undefined {
    const row = this.s.getWorker.get(id);
    return row === undefined ? undefined : toWorker(row);
  }

  appendEvent(kind: string, data: unknown, now: number): number {
    return Number(this.s.appendEvent.run(now, kind, JSON.stringify(data ?? null)).lastInsertRowid);
  }

  eventsAfter(id: number, limit: number): EventRow[] {
    return this.s.eventsAfter
      .all(id, limit)
      .map((r) => ({ id: r.id, atMs: r.at_ms, kind: r.kind, data: JSON.parse(r.data) as unknown }));
  }

  lastThroughput(workerId: string): { samples: number; ms: number } | undefined {
    const row = this.s.lastThroughput.get(workerId);
    return row?.ms == null ? undefined : { samples: row.samples, ms: row.ms };
  }

  leaseHolders(): { workerId: string; shard: number }[] {
    return this.s.leaseHolders.all().map((r) => ({ workerId: r.worker_id, shard: r.shard }));
  }

  cutProgress(): Map<number, number> {
    return new Map(this.s.cutProgress.all().map((r) => [r.shard, r.cut ?? 0]));
  }

  setUnitWindow(id: string, window: UnitWindow): void {
    this.s.setUnitWindow.run({ id, ...window });
  }

  leasesHeldBy(workerId: string): number {
    return this.s.leasesHeldBy.get(workerId)?.n ?? 0;
  }

  createToken(token: Omit<TokenRow, 'revokedMs'>): void {
    this.s.createToken.run(token.id, token.hash, token.name, token.createdMs);
  }

  listTokens(): TokenRow[] {
    return this.s.listTokens.all().map(toToken);
  }

  tokenByHash(hash: string): TokenRow | undefined {
    const row = this.s.tokenByHash.get(hash);
    return row === undefined ? undefined : toToken(row);
  }

  revokeToken(id: string, now: number): boolean {
    return this.s.revokeToken.run(now, id).changes === 1;
  }

  hasActiveTokens(): boolean {
    return this.s.activeToken.get() !== undefined;
  }

  getToken(id: string): TokenRow | undefined {
    const row = this.s.getToken.get(id);
    return row === undefined ? undefined : toToken(row);
  }

  tokensCreatedSince(sinceMs: number): number {
    return this.s.tokensCreatedSince.get(sinceMs)?.n ?? 0;
  }

  setPaused(pausedMs: number | null, now: number): void {
    this.s.setPaused.run(pausedMs, now);
  }

  leasedUnits(): Unit[] {
    return this.s.leasedUnits.all().map(toUnit);
  }

  supersedeTwins(unitId: string): Unit[] {
    const unit = this.s.getUnit.get(unitId);
    if (unit === undefined) return [];
    const twins = this.s.twinsOf.all({ id: unitId, of: unit.backup_of }).map(toUnit);
    for (const twin of twins) this.s.supersede.run(twin.id);
    return twins;
  }

  mergedFront(shard: number): number {
    return this.s.mergedFront.get(shard)?.front ?? 0;
  }

  retireUnitsEndingBy(shard: number, by: number): Unit[] {
    const units = this.s.openUnitsEndingBy.all({ shard, by }).map(toUnit);
    for (const unit of units) this.s.supersede.run(unit.id);
    return units;
  }

  cancelLease(unitId: string): Unit | undefined {
    return this.db
      .transaction(() => {
        const before = this.getUnit(unitId);
        return before !== undefined && this.s.cancelLease.run(unitId).changes === 1 ? before : undefined;
      })
      .immediate();
  }

  releaseLeasesOf(workerId: string, keep: readonly string[] = []): number {
    return this.s.releaseLeasesOf.run(workerId, JSON.stringify(keep)).changes;
  }

  holdLease(unitId: string, token: string, untilMs: number): boolean {
    return this.s.holdLease.run(untilMs, unitId, token).changes === 1;
  }

  recentVerdicts(workerId: string, limit: number): Verdict[] {
    return this.s.recentVerdicts
      .all({ id: workerId, limit })
      .map((r) => ({ status: r.status, rule: r.rule, receivedMs: r.received_ms }));
  }

  pruneEvents(keep: number): number {
    return this.s.pruneEvents.run(keep).changes;
  }

  pruneIdleWorkers(seenBeforeMs: number, keep: readonly string[]): number {
    return this.s.pruneIdleWorkers.run(seenBeforeMs, JSON.stringify(keep)).changes;
  }

  lastEventId(): number {
    return this.s.lastEventId.get()?.id ?? 0;
  }

  listWorkers(): Worker[] {
    return this.s.listWorkers.all().map(toWorker);
  }

  workersPage(offset: number, limit: number): Worker[] {
    return this.s.workersPage.all(limit, offset).map(toWorker);
  }

  workerCount(): number {
    return this.s.workerCount.get()?.n ?? 0;
  }

  workersAboveCredit(credit: number): number {
    return this.s.workersAboveCredit.get(credit)?.n ?? 0;
  }

  resultCounts(): ResultCounts {
    const counts = { accepted: 0, rejected: 0 };
    for (const { status, n } of this.s.resultCounts.all()) counts[status] = n;
    return counts;
  }

  shardActivity(): ShardActivity[] {
    const byShard = new Map<number, ShardActivity>();
    const entry = (shard: number): ShardActivity => {
      let found = byShard.get(shard);
      if (found === undefined) {
        found = { shard, leased: 0, accepted: 0, rejected: 0, meanStaleness: null };
        byShard.set(shard, found);
      }
      return found;
    };
    for (const { shard, n } of this.s.leasedByShard.all()) entry(shard).leased = n;
    for (const { shard, status, n } of this.s.verdictsByShard.all()) entry(shard)[status] = n;
    for (const { shard, mean } of this.s.stalenessByShard.all()) entry(shard).meanStaleness = mean;
    return [...byShard.values()].sort((a, b) => a.shard - b.shard);
  }

  rejectionsByRule(): { rule: string; n: number }[] {
    return this.s.rejectionsByRule.all();
  }

  recentRejections(limit: number): ResultRow[] {
    return this.s.recentRejections.all(limit).map(toResult);
  }

  acceptedSince(sinceMs: number): { results: number; samples: number; firstMs: number | null } {
    const row = this.s.acceptedSince.get(sinceMs);
    return { results: row?.results ?? 0, samples: row?.samples ?? 0, firstMs: row?.first_ms ?? null };
  }

  blobsInUse(): Set<string> {
    const names = this.s.blobsInUse.all().map((row) => row.blob);
    return new Set(names.filter((name): name is string => name !== null && name !== ''));
  }

  latestEval(): EvalRow | undefined {
    const row = this.s.latestEval.get();
    return row === undefined ? undefined : toEval(row);
  }

  listUnits(): Unit[] {
    return this.s.listUnits.all().map(toUnit);
  }

  listResults(): ResultRow[] {
    return this.s.listResults.all().map(toResult);
  }

  getJob(): JobRow | undefined {
    const r = this.s.getJob.get();
    return r === undefined
      ? undefined
      : {
          config: r.config,
          phase: r.phase,
          treeBlob: r.tree_blob,
          pausedMs: r.paused_ms,
          createdMs: r.created_ms,
          updatedMs: r.updated_ms,
        };
  }

  createJob(config: string, now: number): boolean {
    return this.s.createJob.run(config, now, now).changes === 1;
  }

  setJobConfig(config: string, now: number): void {
    this.s.setJobConfig.run(config, now);
  }

  setJobPhase(phase: JobPhase, now: number, treeBlob?: string): void {
    this.s.setJobPhase.run(phase, now, treeBlob ?? null);
  }

  getTop(): TopRow | undefined {
    const r = this.s.getTop.get();
    return r === undefined
      ? undefined
      : {
          blob: r.blob,
          version: r.version,
          routingVersion: r.routing_version,
          routingBlob: r.routing_blob,
          routedVersion: r.routed_version,
        };
  }

  setTop(top: TopRow): void {
    this.s.setTop.run({
      blob: top.blob,
      version: top.version,
      routing_version: top.routingVersion,
      routing_blob: top.routingBlob,
      routed_version: top.routedVersion,
    });
  }

  addEval(row: Omit<EvalRow, 'id'>): number {
    return Number(
      this.s.addEval.run(row.atMs, row.accepted, row.hardTestAcc, row.valLoss, row.checkpointBlob)
        .lastInsertRowid,
    );
  }

  listEvals(): EvalRow[] {
    return this.s.listEvals.all().map(toEval);
  }

  addToCounter(name: string, amount: number): void {
    this.s.addToCounter.run(name, amount);
  }

  counters(): Record<string, number> {
    return Object.fromEntries(this.s.counters.all().map((r) => [r.name, r.value]));
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  close(): void {
    this.db.close();
  }
}
