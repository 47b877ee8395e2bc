/** Every SQL statement of the SQLite store, prepared once per connection. */
import type Database from 'better-sqlite3';
import type { JobPhase, UnitState } from './store.ts';
import type { EvalDbRow, ResultDbRow, ShardRow, TokenDbRow, UnitRow, WorkerRow } from './sqlite-rows.ts';

export function prepareStatements(db: Database.Database) {
  return {
    upsertShard: db.prepare<[ShardRow]>(
      `INSERT INTO shards (id, version, samples, data_blob, weights_blob, budget_samples, trained_samples,
         momentum_blob, val_blob, val_loss, best_val_loss, best_phase, context_blob)
       VALUES (@id, @version, @samples, @data_blob, @weights_blob, @budget_samples, @trained_samples,
         @momentum_blob, @val_blob, @val_loss, @best_val_loss, @best_phase, @context_blob)
       ON CONFLICT(id) DO UPDATE SET version = excluded.version, samples = excluded.samples,
         data_blob = excluded.data_blob, weights_blob = excluded.weights_blob,
         budget_samples = excluded.budget_samples, trained_samples = excluded.trained_samples,
         momentum_blob = excluded.momentum_blob, val_blob = excluded.val_blob, val_loss = excluded.val_loss,
         best_val_loss = excluded.best_val_loss, best_phase = excluded.best_phase,
         context_blob = excluded.context_blob`,
    ),
    getShard: db.prepare<[number], ShardRow>('SELECT * FROM shards WHERE id = ?'),
    listShards: db.prepare<[], ShardRow>('SELECT * FROM shards ORDER BY id'),
    createUnit: db.prepare<
      [
        string,
        number,
        number,
        number,
        number | null,
        number | null,
        number | null,
        number | null,
        number | null,
        string | null,
        string | null,
        string | null,
        number | null,
        number,
      ]
    >(
      `INSERT INTO units (id, shard, base_version, state, attempts, created_ms, window_from, window_to, epochs, share, cut_to, backup_of, rejected_by, origin, part, retry)
       VALUES (?, ?, ?, 'ready', 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    getUnit: db.prepare<[string], UnitRow>('SELECT * FROM units WHERE id = ?'),
    oldestReady: db.prepare<[{ owner: string; preferred: string }], { id: string }>(
      `SELECT id FROM units u WHERE state = 'ready'
         AND (held_by IS NULL OR (held_by != @owner AND substr(held_by, 1, length(@owner) + 1) != @owner || '-'))
         AND NOT EXISTS (SELECT 1 FROM units o
           WHERE (o.id = u.backup_of OR o.backup_of = u.id) AND o.state = 'leased'
             AND (o.worker_id = @owner OR substr(o.worker_id, 1, length(@owner) + 1) = @owner || '-'))
       ORDER BY rejected_by IS NOT NULL AND @owner IN (SELECT value FROM json_each(rejected_by)),
         created_ms, shard NOT IN (SELECT value FROM json_each(@preferred)), id LIMIT 1`,
    ),
    // A held unit keeps the base its first result was computed from.
    lease: db.prepare<[string, string, number, number, string]>(
      `UPDATE units SET state = 'leased', worker_id = ?, lease_token = ?, deadline_ms = ?, leased_ms = ?,
         base_version = CASE WHEN held_by IS NULL
           THEN (SELECT version FROM shards WHERE shards.id = units.shard) ELSE base_version END,
         base_blob = CASE WHEN held_by IS NULL
           THEN (SELECT weights_blob FROM shards WHERE shards.id = units.shard) ELSE base_blob END,
         base_top = CASE WHEN held_by IS NULL THEN (SELECT version FROM top WHERE id = 1) ELSE base_top END,
         base_samples = CASE WHEN held_by IS NULL
           THEN (SELECT samples FROM shards WHERE shards.id = units.shard) ELSE base_samples END
       WHERE id = ? AND state = 'ready'`,
    ),
    hold: db.prepare<[{ id: string; token: string; worker: string; blob: string }]>(
      `UPDATE units SET state = 'ready', held_by = @worker, held_blob = @blob, lease_token = NULL,
         worker_id = NULL, deadline_ms = NULL
       WHERE id = @id AND lease_token = @token AND state = 'leased' AND held_by IS NULL`,
    ),
    renew: db.prepare<[{ id: string; token: string; now: number; lease: number; lifetime: number }]>(
      `UPDATE units SET deadline_ms = MIN(@now + @lease, COALESCE(leased_ms, @now) + @lifetime)
       WHERE id = @id AND lease_token = @token AND state = 'leased' AND deadline_ms >= @now
         AND COALESCE(leased_ms, @now) + @lifetime > @now`,
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
    setShardWeights: db.prepare<
      [{ weights: string; momentum: string; val: number; measure: number; phase: string; id: number }]
    >(
      `UPDATE shards SET weights_blob = @weights, momentum_blob = @momentum, val_loss = @val,
         best_val_loss = CASE WHEN best_phase IS @phase THEN MIN(COALESCE(best_val_loss, @measure), @measure)
           ELSE @measure END,
         best_phase = @phase WHERE id = @id`,
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
    lastThroughput: db.prepare<[string], { samples: number; ms: number | null }>(
      `SELECT r.samples AS samples, r.received_ms - u.leased_ms AS ms FROM results r JOIN units u ON u.id = r.unit_id
       WHERE r.worker_id = ? AND r.status = 'accepted' ORDER BY r.received_ms DESC LIMIT 1`,
    ),
    leasesHeldBy: db.prepare<[string], { n: number }>(
      `SELECT COUNT(*) AS n FROM units WHERE worker_id = ? AND state = 'leased'`,
    ),
    createToken: db.prepare<[string, string, string, number]>(
      'INSERT INTO tokens (id, hash, name, created_ms) VALUES (?, ?, ?, ?)',
    ),
    listTokens: db.prepare<[], TokenDbRow>('SELECT * FROM tokens ORDER BY created_ms, id'),
    tokenByHash: db.prepare<[string], TokenDbRow>('SELECT * FROM tokens WHERE hash = ?'),
    revokeToken: db.prepare<[number, string]>(
      'UPDATE tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL',
    ),
    activeToken: db.prepare<[], { one: number }>(
      'SELECT 1 AS one FROM tokens WHERE revoked_ms IS NULL LIMIT 1',
    ),
    lastEventId: db.prepare<[], { id: number | null }>('SELECT MAX(id) AS id FROM events'),
    listWorkers: db.prepare<[], WorkerRow>('SELECT * FROM workers ORDER BY credit DESC, id'),
    workersPage: db.prepare<[number, number], WorkerRow>(
      'SELECT * FROM workers ORDER BY credit DESC, id LIMIT ? OFFSET ?',
    ),
    workerCount: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM workers'),
    workersAboveCredit: db.prepare<[number], { n: number }>(
      'SELECT COUNT(*) AS n FROM workers WHERE credit > ?',
    ),
    resultCounts: db.prepare<[], { status: 'accepted' | 'rejected'; n: number }>(
      'SELECT status, COUNT(*) AS n FROM results GROUP BY status',
    ),
    leaseHolders: db.prepare<[], { worker_id: string; shard: number }>(
      `SELECT worker_id, shard FROM units WHERE state = 'leased' AND worker_id IS NOT NULL`,
    ),
    leasedByShard: db.prepare<[], { shard: number; n: number }>(
      `SELECT shard, COUNT(*) AS n FROM units WHERE state = 'leased' GROUP BY shard`,
    ),
    stalenessByShard: db.prepare<[], { shard: number; mean: number }>(
      `SELECT shard, AVG(merged_version - 1 - base_version) AS mean FROM results
       WHERE status = 'accepted' AND merged_version IS NOT NULL GROUP BY shard`,
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
    acceptedSince: db.prepare<[number], { results: number; samples: number | null; first_ms: number | null }>(
      `SELECT COUNT(*) AS results, SUM(samples) AS samples, MIN(received_ms) AS first_ms FROM results
       WHERE status = 'accepted' AND received_ms >= ?`,
    ),
    latestEval: db.prepare<[], EvalDbRow>('SELECT * FROM evals ORDER BY id DESC LIMIT 1'),
    blobsInUse: db.prepare<[], { blob: string | null }>(
      `SELECT tree_blob AS blob FROM job
       UNION SELECT data_blob FROM shards UNION SELECT weights_blob FROM shards
       UNION SELECT momentum_blob FROM shards UNION SELECT val_blob FROM shards
       UNION SELECT context_blob FROM shards
       UNION SELECT blob FROM top UNION SELECT routing_blob FROM top
       UNION SELECT base_blob FROM units WHERE state IN ('ready', 'leased', 'submitted')
       UNION SELECT held_blob FROM units WHERE state IN ('ready', 'leased', 'submitted')
       UNION SELECT checkpoint_blob FROM (SELECT checkpoint_blob FROM evals ORDER BY id DESC LIMIT 1)
       UNION SELECT checkpoint_blob FROM (SELECT checkpoint_blob FROM evals ORDER BY hard_test_acc DESC, id DESC LIMIT 1)`,
    ),
    listUnits: db.prepare<[], UnitRow>('SELECT * FROM units ORDER BY created_ms, id'),
    cutProgress: db.prepare<[], { shard: number; cut: number | null }>(
      'SELECT shard, MAX(COALESCE(cut_to, window_to)) AS cut FROM units GROUP BY shard',
    ),
    setUnitWindow: db.prepare<[{ id: string; from: number; to: number; epochs: number }]>(
      'UPDATE units SET window_from = @from, window_to = @to, epochs = @epochs WHERE id = @id',
    ),
    listResults: db.prepare<[], ResultDbRow>('SELECT * FROM results ORDER BY received_ms, unit_id'),
    getJob: db.prepare<
      [],
      {
        config: string;
        phase: JobPhase;
        tree_blob: string | null;
        paused_ms: number | null;
        created_ms: number;
        updated_ms: number;
      }
    >('SELECT * FROM job WHERE id = 1'),
    createJob: db.prepare<[string, number, number]>(
      `INSERT INTO job (id, config, phase, tree_blob, created_ms, updated_ms)
       VALUES (1, ?, 'pretraining', NULL, ?, ?) ON CONFLICT(id) DO NOTHING`,
    ),
    setJobConfig: db.prepare<[string, number]>('UPDATE job SET config = ?, updated_ms = ? WHERE id = 1'),
    setJobPhase: db.prepare<[JobPhase, number, string | null]>(
      'UPDATE job SET phase = ?, updated_ms = ?, tree_blob = COALESCE(?, tree_blob) WHERE id = 1',
    ),
    getTop: db.prepare<
      [],
      { blob: string; version: number; routing_version: number; routing_blob: string; routed_version: number }
    >('SELECT * FROM top WHERE id = 1'),
    setTop: db.prepare<
      [
        {
          blob: string;
          version: number;
          routing_version: number;
          routing_blob: string;
          routed_version: number;
        },
      ]
    >(
      `INSERT INTO top (id, blob, version, routing_version, routing_blob, routed_version)
       VALUES (1, @blob, @version, @routing_version, @routing_blob, @routed_version)
       ON CONFLICT(id) DO UPDATE SET blob = excluded.blob, version = excluded.version,
         routing_version = excluded.routing_version, routing_blob = excluded.routing_blob,
         routed_version = excluded.routed_version`,
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
    getToken: db.prepare<[string], TokenDbRow>('SELECT * FROM tokens WHERE id = ?'),
    tokensCreatedSince: db.prepare<[number], { n: number }>(
      'SELECT COUNT(*) AS n FROM tokens WHERE created_ms >= ?',
    ),
    setPaused: db.prepare<[number | null, number]>(
      'UPDATE job SET paused_ms = ?, updated_ms = ? WHERE id = 1',
    ),
    leasedUnits: db.prepare<[], UnitRow>(`SELECT * FROM units WHERE state = 'leased' ORDER BY leased_ms`),
    supersede: db.prepare<[string]>(
      `UPDATE units SET state = 'rejected', lease_token = NULL, deadline_ms = NULL
       WHERE id = ? AND state IN ('ready', 'leased')`,
    ),
    mergedFront: db.prepare<[number], { front: number | null }>(
      `SELECT MAX(window_from) AS front FROM units WHERE shard = ? AND state = 'accepted'`,
    ),
    openUnitsEndingBy: db.prepare<[{ shard: number; by: number }], UnitRow>(
      `SELECT * FROM units WHERE shard = @shard AND state IN ('ready', 'leased') AND held_by IS NULL
       AND window_to IS NOT NULL AND window_to <= @by`,
    ),
    twinsOf: db.prepare<[{ id: string; of: string | null }], UnitRow>(
      `SELECT * FROM units WHERE id != @id AND state IN ('ready', 'leased')
       AND (backup_of = @id OR id = @of OR backup_of = @of)`,
    ),
    cancelLease: db.prepare<[string]>(
      `UPDATE units SET state = 'ready', lease_token = NULL, worker_id = NULL, deadline_ms = NULL
       WHERE id = ? AND state = 'leased'`,
    ),
    releaseLeasesOf: db.prepare<[string, string]>(
      `UPDATE units SET state = 'ready', lease_token = NULL, worker_id = NULL, deadline_ms = NULL
       WHERE worker_id = ? AND state = 'leased' AND id NOT IN (SELECT value FROM json_each(?))`,
    ),
    holdLease: db.prepare<[number, string, string]>(
      `UPDATE units SET deadline_ms = MAX(COALESCE(deadline_ms, 0), ?)
       WHERE id = ? AND lease_token = ? AND state = 'leased'`,
    ),
    recentVerdicts: db.prepare<
      [{ id: string; limit: number }],
      { status: 'accepted' | 'rejected'; rule: string | null; received_ms: number }
    >(
      `SELECT status, rule, received_ms FROM results WHERE worker_id = @id OR worker_id LIKE @id || '-%'
       ORDER BY received_ms DESC, unit_id DESC LIMIT @limit`,
    ),
    pruneEvents: db.prepare<[number]>('DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?'),
    pruneIdleWorkers: db.prepare<[number, string]>(
      `DELETE FROM workers WHERE last_seen_ms < ? AND units_done = 0 AND rejections = 0
         AND id NOT IN (SELECT value FROM json_each(?))
         AND id NOT IN (SELECT worker_id FROM units WHERE state = 'leased' AND worker_id IS NOT NULL)`,
    ),
  };
}
