import type Database from 'better-sqlite3';

/**
 * Append-only schema migrations. Never edit or reorder an entry that has shipped: add a
 * new one at the end. Entry i is schema version i + 1, tracked in `schema_migrations`.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE shards (
    id INTEGER PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 0,
    samples INTEGER NOT NULL DEFAULT 0,
    data_blob TEXT NOT NULL,
    weights_blob TEXT NOT NULL,
    budget_samples INTEGER NOT NULL DEFAULT 0,
    trained_samples INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE units (
    id TEXT PRIMARY KEY,
    shard INTEGER NOT NULL REFERENCES shards(id),
    base_version INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('ready','leased','submitted','accepted','rejected','expired')),
    worker_id TEXT,
    lease_token TEXT,
    deadline_ms INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL
  );
  CREATE INDEX units_state_created ON units(state, created_ms);
  CREATE TABLE results (
    unit_id TEXT PRIMARY KEY REFERENCES units(id),
    worker_id TEXT NOT NULL,
    shard INTEGER NOT NULL,
    base_version INTEGER NOT NULL,
    merged_version INTEGER NULL,
    status TEXT NOT NULL,
    reason TEXT NULL,
    delta_blob TEXT NULL,
    received_ms INTEGER NOT NULL
  );
  CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    backend TEXT NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    units_done INTEGER NOT NULL DEFAULT 0,
    credit INTEGER NOT NULL DEFAULT 0,
    rejections INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
  );
  `,
  `
  CREATE TABLE job (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    config TEXT NOT NULL,
    phase TEXT NOT NULL,
    tree_blob TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
  );
  ALTER TABLE shards ADD COLUMN momentum_blob TEXT;
  ALTER TABLE shards ADD COLUMN val_blob TEXT;
  ALTER TABLE shards ADD COLUMN val_loss REAL;
  CREATE TABLE evals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    accepted INTEGER NOT NULL,
    hard_test_acc REAL NOT NULL,
    val_loss REAL NOT NULL,
    checkpoint_blob TEXT NOT NULL
  );
  CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  );
  `,
  `
  ALTER TABLE results ADD COLUMN rule TEXT;
  ALTER TABLE results ADD COLUMN samples INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX results_status_received ON results(status, received_ms);
  CREATE INDEX units_shard_state ON units(shard, state);
  `,
  `
  ALTER TABLE shards ADD COLUMN best_val_loss REAL;
  UPDATE shards SET best_val_loss = val_loss;
  `,
  `
  ALTER TABLE units ADD COLUMN leased_ms INTEGER;
  `,
  `
  CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    revoked_ms INTEGER
  );
  `,
  `
  ALTER TABLE job ADD COLUMN paused_ms INTEGER;
  CREATE INDEX results_worker_received ON results(worker_id, received_ms);
  CREATE INDEX tokens_created ON tokens(created_ms);
  `,
  `
  ALTER TABLE units ADD COLUMN base_blob TEXT;
  ALTER TABLE units ADD COLUMN held_by TEXT;
  ALTER TABLE units ADD COLUMN held_blob TEXT;
  `,
  `
  ALTER TABLE units ADD COLUMN window_from REAL;
  ALTER TABLE units ADD COLUMN window_to REAL;
  ALTER TABLE units ADD COLUMN epochs INTEGER;
  `,
  `
  ALTER TABLE shards ADD COLUMN best_phase TEXT;
  `,
  `
  CREATE TABLE top (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    blob TEXT NOT NULL,
    version INTEGER NOT NULL,
    routing_version INTEGER NOT NULL,
    routing_blob TEXT NOT NULL,
    routed_version INTEGER NOT NULL
  );
  ALTER TABLE shards ADD COLUMN context_blob TEXT;
  ALTER TABLE units ADD COLUMN base_top INTEGER;
  ALTER TABLE units ADD COLUMN base_samples INTEGER;
  `,
  `
  ALTER TABLE units ADD COLUMN share REAL;
  ALTER TABLE units ADD COLUMN cut_to REAL;
  ALTER TABLE units ADD COLUMN backup_of TEXT;
  `,
  `
  ALTER TABLE units ADD COLUMN rejected_by TEXT;
  `,
  `
  ALTER TABLE units ADD COLUMN origin TEXT;
  ALTER TABLE units ADD COLUMN part INTEGER;
  ALTER TABLE units ADD COLUMN retry INTEGER NOT NULL DEFAULT 0;
  `,
];

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
