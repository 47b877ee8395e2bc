import Database from 'better-sqlite3';
import { DatabaseError } from './database-error.ts';
import { MIGRATIONS } from './migrations.ts';

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
}

export const JOB_PHASES = ['pretraining', 'routing', 'training', 'done'] as const;
export type JobPhase = (typeof JOB_PHASES)[number];

export interface JobRow {
  /** The job's settings as JSON, validated by whoever reads them. */
  config: string;
  phase: JobPhase;
  /** The pretrained full tree, whose top K levels are frozen. */
  treeBlob: string | null;
  createdMs: number;
  updatedMs: number;
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

export interface NewUnit {
  id: string;
  shard: number;
  baseVersion: number;
  createdMs: number;
}

export interface Unit extends NewUnit {
  state: UnitState;
  workerId: string | null;
  leaseToken: string | null;
  deadlineMs: number | null;
  attempts: number;
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
  now: number;
  /** The shard after merging this delta, written in the same transaction. */
  merged?: { weightsBlob: string; momentumBlob: string; valLoss: number };
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
}

/** Persistence for the coordinator. Time is always passed in; nothing reads the clock. */
export interface Store {
  upsertShard(shard: Shard): void;
  getShard(id: number): Shard | undefined;
  listShards(): Shard[];
  createUnit(unit: NewUnit): void;
  getUnit(id: string): Unit | undefined;
  /** The oldest 'ready' unit becomes 'leased' to `workerId` with `token`; undefined if none. */
  leaseUnit(workerId: string, now: number, leaseMs: number, token: string): Unit | undefined;
  /** False means the lease was lost (wrong token, not leased, or past its deadline). */
  renewLease(unitId: string, token: string, now: number, leaseMs: number): boolean;
  /** leased -> ready (attempts + 1), token-fenced: the worker hands the unit back. */
  releaseUnit(unitId: string, token: string): boolean;
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
  upsertWorker(worker: WorkerInfo): void;
  getWorker(id: string): Worker | undefined;
  listWorkers(): Worker[];
  /** Workers by credit, one page. */
  workersPage(offset: number, limit: number): Worker[];
  workerCount(): number;
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
  getJob(): JobRow | undefined;
  /** Creates the job row once; later calls change nothing and return false. */
  createJob(config: string, now: number): boolean;
  setJobPhase(phase: JobPhase, now: number, treeBlob?: string): void;
  addEval(row: Omit<EvalRow, 'id'>): number;
  listEvals(): EvalRow[];
  latestEval(): EvalRow | undefined;
  addToCounter(name: string, amount: number): void;
  counters(): Record<string, number>;
  /** Runs `fn` as one immediate transaction (nested calls become savepoints). */
  transaction<T>(fn: () => T): T;
  close(): void;
}

interface ShardRow {
  id: number;
  version: number;
  samples: number;
  data_blob: string;
  weights_blob: string;
  budget_samples: number;
  trained_samples: number;
  momentum_blob: string | null;
  val_blob: string | null;
  val_loss: number | null;
}
interface UnitRow {
  id: string;
  shard: number;
  base_version: number;
  state: UnitState;
  worker_id: string | null;
  lease_token: string | null;
  deadline_ms: number | null;
  attempts: number;
  created_ms: number;
}
interface WorkerRow {
  id: string;
  name: string;
  token_hash: string;
  backend: string;
  last_seen_ms: number;
  units_done: number;
  credit: number;
  rejections: number;
}
interface ResultDbRow {
  unit_id: string;
  worker_id: string;
  shard: number;
  base_version: number;
  merged_version: number | null;
  status: 'accepted' | 'rejected';
  rule: string | null;
  reason: string | null;
  delta_blob: string | null;
  samples: number;
  received_ms: number;
}
interface EvalDbRow {
  id: number;
  at_ms: number;
  accepted: number;
  hard_test_acc: number;
  val_loss: number;
  checkpoint_blob: string;
}

const toShard = (r: ShardRow): Shard => ({
  id: r.id,
  version: r.version,
  samples: r.samples,
  dataBlob: r.data_blob,
  weightsBlob: r.weights_blob,
  budgetSamples: r.budget_samples,
  trainedSamples: r.trained_samples,
  momentumBlob: r.momentum_blob,
  valBlob: r.val_blob,
  valLoss: r.val_loss,
});
const toUnit = (r: UnitRow): Unit => ({
  id: r.id,
  shard: r.shard,
  baseVersion: r.base_version,
  state: r.state,
  workerId: r.worker_id,
  leaseToken: r.lease_token,
  deadlineMs: r.deadline_ms,
  attempts: r.attempts,
  createdMs: r.created_ms,
});
const toWorker = (r: WorkerRow): Worker => ({
  id: r.id,
  name: r.name,
  tokenHash: r.token_hash,
  backend: r.backend,
  lastSeenMs: r.last_seen_ms,
  unitsDone: r.units_done,
  credit: r.credit,
  rejections: r.rejections,
});
const toResult = (r: ResultDbRow): ResultRow => ({
  unitId: r.unit_id,
  workerId: r.worker_id,
  shard: r.shard,
  baseVersion: r.base_version,
  mergedVersion: r.merged_version,
  status: r.status,
  rule: r.rule,
  reason: r.reason,
  deltaBlob: r.delta_blob,
  samples: r.samples,
  receivedMs: r.received_ms,
});
const toEval = (r: EvalDbRow): EvalRow => ({
  id: r.id,
  atMs: r.at_ms,
  accepted: r.accepted,
  hardTestAcc: r.hard_test_acc,
  valLoss: r.val_loss,
  checkpointBlob: r.checkpoint_blob,
});

/** Applies every migration not yet recorded, each in its own transaction. Returns how many ran. */
export function migrate(db: Database.Database): number {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)');
  const row = db.prepare<[], { v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations').get();
  const current = row?.v ?? 0;
  const record = db.prepare<[number]>('INSERT INTO schema_migrations (version) VALUES (?)');
  let applied = 0;
  for (let i = current; i < MIGRATIONS.length; i++) {
    const sql = MIGRATIONS[i];
    if (sql === undefined) break;
    db.transaction(() => {
      db.exec(sql);
      record.run(i + 1);
    })();
    applied++;
  }
  return applied;
}

export class SqliteStore implements Store {
  readonly db: Database.Database;
  /** Migrations applied when this instance opened the database. */
  readonly migrationsApplied: number;

  private readonly s;
  private readonly leaseTx: Database.Transaction<
    (workerId: string, now: number, leaseMs: number, token: string) => Unit | undefined
  >;
  private readonly acceptTx: Database.Transaction<(input: AcceptInput) => number | undefined>;
  private readonly rejectTx: Database.Transaction<(input: RejectInput) => boolean>;

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
    this.s = {
      upsertShard: db.prepare<[ShardRow]>(
        `INSERT INTO shards (id, version, samples, data_blob, weights_blob, budget_samples, trained_samples,
           momentum_blob, val_blob, val_loss)
         VALUES (@id, @version, @samples, @data_blob, @weights_blob, @budget_samples, @trained_samples,
           @momentum_blob, @val_blob, @val_loss)
         ON CONFLICT(id) DO UPDATE SET version = excluded.version, samples = excluded.samples,
           data_blob = excluded.data_blob, weights_blob = excluded.weights_blob,
           budget_samples = excluded.budget_samples, trained_samples = excluded.trained_samples,
           momentum_blob = excluded.momentum_blob, val_blob = excluded.val_blob, val_loss = excluded.val_loss`,
      ),
      getShard: db.prepare<[number], ShardRow>('SELECT * FROM shards WHERE id = ?'),
      listShards: db.prepare<[], ShardRow>('SELECT * FROM shards ORDER BY id'),
      createUnit: db.prepare<[string, number, number, number]>(
        `INSERT INTO units (id, shard, base_version, state, attempts, created_ms) VALUES (?, ?, ?, 'ready', 0, ?)`,
      ),
      getUnit: db.prepare<[string], UnitRow>('SELECT * FROM units WHERE id = ?'),
      oldestReady: db.prepare<[], { id: string }>(
        `SELECT id FROM units WHERE state = 'ready' ORDER BY created_ms, id LIMIT 1`,
      ),
      lease: db.prepare<[string, string, number, string]>(
        `UPDATE units SET state = 'leased', worker_id = ?, lease_token = ?, deadline_ms = ?,
           base_version = (SELECT version FROM shards WHERE shards.id = units.shard)
         WHERE id = ? AND state = 'ready'`,
      ),
      renew: db.prepare<[number, string, string, number]>(
        `UPDATE units SET deadline_ms = ?
         WHERE id = ? AND lease_token = ? AND state = 'leased' AND deadline_ms >= ?`,
      ),
      release: db.prepare<[string, string]>(
        `UPDATE units SET state = 'ready', attempts = attempts + 1, lease_token = NULL, worker_id = NULL,
           deadline_ms = NULL
         WHERE id = ? AND lease_token = ? AND state = 'leased'`,
      ),
      submit: db.prepare<[string, string, number]>(
        `UPDATE units SET state = 'submitted'
         WHERE id = ? AND lease_token = ? AND state = 'leased' AND deadline_ms >= ?`,
      ),
      resultExists: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM results WHERE unit_id = ?'),
      finishUnit: db.prepare<[UnitState, string]>(
        `UPDATE units SET state = ?, lease_token = NULL WHERE id = ? AND state IN ('leased', 'submitted')`,
      ),
      insertResult: db.prepare<[ResultDbRow]>(
        `INSERT INTO results (unit_id, worker_id, shard, base_version, merged_version, status, rule, reason, delta_blob,
           samples, received_ms)
         VALUES (@unit_id, @worker_id, @shard, @base_version, @merged_version, @status, @rule, @reason, @delta_blob,
           @samples, @received_ms)`,
      ),
      bumpShard: db.prepare<[number, number], { version: number }>(
        `UPDATE shards SET version = version + 1, trained_samples = trained_samples + ? WHERE id = ? RETURNING version`,
      ),
      setShardWeights: db.prepare<[string, string, number, number]>(
        'UPDATE shards SET weights_blob = ?, momentum_blob = ?, val_loss = ? WHERE id = ?',
      ),
      creditWorker: db.prepare<[number, string]>(
        'UPDATE workers SET units_done = units_done + 1, credit = credit + ? WHERE id = ?',
      ),
      penalizeWorker: db.prepare<[string]>('UPDATE workers SET rejections = rejections + 1 WHERE id = ?'),
      getResult: db.prepare<[string], ResultDbRow>('SELECT * FROM results WHERE unit_id = ?'),
      expire: db.prepare<[number]>(
        `UPDATE units SET state = 'ready', attempts = attempts + 1, lease_token = NULL, worker_id = NULL,
           deadline_ms = NULL
         WHERE state = 'leased' AND deadline_ms < ?`,
      ),
      countByState: db.prepare<[], { state: UnitState; n: number }>(
        'SELECT state, COUNT(*) AS n FROM units GROUP BY state',
      ),
      upsertWorker: db.prepare<[Omit<WorkerRow, 'units_done' | 'credit' | 'rejections'>]>(
        `INSERT INTO workers (id, name, token_hash, backend, last_seen_ms, units_done, credit, rejections)
         VALUES (@id, @name, @token_hash, @backend, @last_seen_ms, 0, 0, 0)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, token_hash = excluded.token_hash,
           backend = excluded.backend, last_seen_ms = excluded.last_seen_ms`,
      ),
      getWorker: db.prepare<[string], WorkerRow>('SELECT * FROM workers WHERE id = ?'),
      appendEvent: db.prepare<[number, string, string]>(
        'INSERT INTO events (at_ms, kind, data) VALUES (?, ?, ?)',
      ),
      eventsAfter: db.prepare<[number, number], { id: number; at_ms: number; kind: string; data: string }>(
        'SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?',
      ),
      listWorkers: db.prepare<[], WorkerRow>('SELECT * FROM workers ORDER BY credit DESC, id'),
      workersPage: db.prepare<[number, number], WorkerRow>(
        'SELECT * FROM workers ORDER BY credit DESC, id LIMIT ? OFFSET ?',
      ),
      workerCount: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM workers'),
      resultCounts: db.prepare<[], { status: 'accepted' | 'rejected'; n: number }>(
        'SELECT status, COUNT(*) AS n FROM results GROUP BY status',
      ),
      leasedByShard: db.prepare<[], { shard: number; n: number }>(
        `SELECT shard, COUNT(*) AS n FROM units WHERE state = 'leased' GROUP BY shard`,
      ),
      verdictsByShard: db.prepare<[], { shard: number; status: 'accepted' | 'rejected'; n: number }>(
        'SELECT shard, status, COUNT(*) AS n FROM results GROUP BY shard, status',
      ),
      rejectionsByRule: db.prepare<[], { rule: string; n: number }>(
        `SELECT COALESCE(rule, 'unknown') AS rule, COUNT(*) AS n FROM results WHERE status = 'rejected'
         GROUP BY rule ORDER BY rule`,
      ),
      recentRejections: db.prepare<[number], ResultDbRow>(
        `SELECT * FROM (SELECT * FROM results WHERE status = 'rejected' ORDER BY received_ms DESC, unit_id DESC
         LIMIT ?) ORDER BY received_ms, unit_id`,
      ),
      acceptedSince: db.prepare<
        [number],
        { results: number; samples: number | null; first_ms: number | null }
      >(
        `SELECT COUNT(*) AS results, SUM(samples) AS samples, MIN(received_ms) AS first_ms FROM results
         WHERE status = 'accepted' AND received_ms >= ?`,
      ),
      latestEval: db.prepare<[], EvalDbRow>('SELECT * FROM evals ORDER BY id DESC LIMIT 1'),
      listUnits: db.prepare<[], UnitRow>('SELECT * FROM units ORDER BY created_ms, id'),
      listResults: db.prepare<[], ResultDbRow>('SELECT * FROM results ORDER BY received_ms, unit_id'),
      getJob: db.prepare<
        [],
        { config: string; phase: JobPhase; tree_blob: string | null; created_ms: number; updated_ms: number }
      >('SELECT * FROM job WHERE id = 1'),
      createJob: db.prepare<[string, number, number]>(
        `INSERT INTO job (id, config, phase, tree_blob, created_ms, updated_ms)
         VALUES (1, ?, 'pretraining', NULL, ?, ?) ON CONFLICT(id) DO NOTHING`,
      ),
      setJobPhase: db.prepare<[JobPhase, number, string | null]>(
        'UPDATE job SET phase = ?, updated_ms = ?, tree_blob = COALESCE(?, tree_blob) WHERE id = 1',
      ),
      addEval: db.prepare<[number, number, number, number, string]>(
        'INSERT INTO evals (at_ms, accepted, hard_test_acc, val_loss, checkpoint_blob) VALUES (?, ?, ?, ?, ?)',
      ),
      listEvals: db.prepare<[], EvalDbRow>('SELECT * FROM evals ORDER BY id'),
      addToCounter: db.prepare<[string, number]>(
        `INSERT INTO counters (name, value) VALUES (?, ?)
         ON CONFLICT(name) DO UPDATE SET value = value + excluded.value`,
      ),
      counters: db.prepare<[], { name: string; value: number }>('SELECT * FROM counters'),
    };

    const s = this.s;
    this.leaseTx = db.transaction((workerId: string, now: number, leaseMs: number, token: string) => {
      const next = s.oldestReady.get();
      if (next === undefined) return undefined;
      s.lease.run(workerId, token, now + leaseMs, next.id);
      const row = s.getUnit.get(next.id);
      return row === undefined ? undefined : toUnit(row);
    });
    this.acceptTx = db.transaction((input: AcceptInput) => {
      if (s.resultExists.get(input.unitId) !== undefined) return undefined;
      if (s.finishUnit.run('accepted', input.unitId).changes !== 1) return undefined;
      const bumped = s.bumpShard.get(input.samples, input.shard);
      if (bumped === undefined) throw new Error(`acceptResult: unknown shard ${input.shard}`);
      if (input.merged !== undefined) {
        const { weightsBlob, momentumBlob, valLoss } = input.merged;
        s.setShardWeights.run(weightsBlob, momentumBlob, valLoss, input.shard);
      }
      s.insertResult.run({
        unit_id: input.unitId,
        worker_id: input.workerId,
        shard: input.shard,
        base_version: input.baseVersion,
        merged_version: bumped.version,
        status: 'accepted',
        rule: null,
        reason: null,
        delta_blob: input.deltaBlob,
        samples: input.samples,
        received_ms: input.now,
      });
      s.creditWorker.run(input.samples, input.workerId);
      return bumped.version;
    });
    this.rejectTx = db.transaction((input: RejectInput) => {
      if (s.resultExists.get(input.unitId) !== undefined) return false;
      const unit = s.getUnit.get(input.unitId);
      if (unit === undefined) return false;
      if (s.finishUnit.run('rejected', input.unitId).changes !== 1) return false;
      s.insertResult.run({
        unit_id: input.unitId,
        worker_id: input.workerId,
        shard: unit.shard,
        base_version: unit.base_version,
        merged_version: null,
        status: 'rejected',
        rule: input.rule,
        reason: input.reason,
        delta_blob: null,
        samples: 0,
        received_ms: input.now,
      });
      s.penalizeWorker.run(input.workerId);
      return true;
    });
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
    this.s.createUnit.run(unit.id, unit.shard, unit.baseVersion, unit.createdMs);
  }

  getUnit(id: string): Unit | undefined {
    const row = this.s.getUnit.get(id);
    return row === undefined ? undefined : toUnit(row);
  }

  leaseUnit(workerId: string, now: number, leaseMs: number, token: string): Unit | undefined {
    return this.leaseTx.immediate(workerId, now, leaseMs, token);
  }

  renewLease(unitId: string, token: string, now: number, leaseMs: number): boolean {
    return this.s.renew.run(now + leaseMs, unitId, token, now).changes === 1;
  }

  releaseUnit(unitId: string, token: string): boolean {
    return this.s.release.run(unitId, token).changes === 1;
  }

  submitResult(unitId: string, token: string, now: number): boolean {
    return this.s.submit.run(unitId, token, now).changes === 1;
  }

  acceptResult(input: AcceptInput): number | undefined {
    return this.acceptTx.immediate(input);
  }

  rejectResult(input: RejectInput): boolean {
    return this.rejectTx.immediate(input);
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

  listWorkers(): Worker[] {
    return this.s.listWorkers.all().map(toWorker);
  }

  workersPage(offset: number, limit: number): Worker[] {
    return this.s.workersPage.all(limit, offset).map(toWorker);
  }

  workerCount(): number {
    return this.s.workerCount.get()?.n ?? 0;
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
        found = { shard, leased: 0, accepted: 0, rejected: 0 };
        byShard.set(shard, found);
      }
      return found;
    };
    for (const { shard, n } of this.s.leasedByShard.all()) entry(shard).leased = n;
    for (const { shard, status, n } of this.s.verdictsByShard.all()) entry(shard)[status] = n;
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
          createdMs: r.created_ms,
          updatedMs: r.updated_ms,
        };
  }

  createJob(config: string, now: number): boolean {
    return this.s.createJob.run(config, now, now).changes === 1;
  }

  setJobPhase(phase: JobPhase, now: number, treeBlob?: string): void {
    this.s.setJobPhase.run(phase, now, treeBlob ?? null);
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
