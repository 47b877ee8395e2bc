/** Read-only looks into a coordinator's SQLite file, as an auditor would take them. */
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';

export interface Row {
  [key: string]: number | string | null;
}
export const query = (db: string, sql: string): Row[] => {
  const handle = new Database(db, { readonly: true, fileMustExist: true });
  try {
    return handle.prepare(sql).all() as Row[];
  } finally {
    handle.close();
  }
};

/** The samples of a shard's schedule its overtaken units were to train. */
function overtakenSamples(db: string, shard: number, budget: number): number {
  const units = query(
    db,
    `SELECT u.window_from AS f, u.window_to AS t, COALESCE(u.share, 1) AS share FROM units u
     WHERE u.shard = ${shard} AND u.id IN
       (SELECT json_extract(data, '$.unit') FROM events WHERE kind = 'overtaken')`,
  );
  return units.reduce((sum, u) => sum + (Number(u['t']) - Number(u['f'])) * Number(u['share']) * budget, 0);
}

/**
 * Every accepted result merged exactly once: one version bump and its samples per result;
 * credited to one worker, or to both of its workers in quorum mode.
 */
export function assertMergedExactlyOnce(db: string, workersPerResult = 1): void {
  const units = query(db, 'SELECT state, COUNT(*) AS n FROM units GROUP BY state');
  assert.deepEqual(
    units.filter((u) => u['state'] !== 'accepted' && u['state'] !== 'rejected'),
    [],
    'no unit left open',
  );
  const shards = query(db, 'SELECT id, version, trained_samples, budget_samples FROM shards');
  for (const shard of shards) {
    const [merged] = query(
      db,
      `SELECT COUNT(*) AS n, COUNT(DISTINCT merged_version) AS versions, COALESCE(MAX(merged_version), 0) AS top
       FROM results WHERE status = 'accepted' AND shard = ${Number(shard['id'])}`,
    );
    assert.equal(shard['version'], merged!['n'], `shard ${shard['id']}: one version per accepted result`);
    assert.equal(merged!['versions'], merged!['n'], `shard ${shard['id']}: versions are distinct`);
    assert.equal(merged!['top'], merged!['n']);
    // Fractional units count whole minibatches, so a shard's total may differ by a few. A unit
    // the shard's schedule overtook (its holder was slow, or cut off by a restart) is retired
    // untrained on purpose: its window counts as spent.
    const [trained, budget] = [Number(shard['trained_samples']), Number(shard['budget_samples'])];
    const overtaken = overtakenSamples(db, Number(shard['id']), budget);
    assert.ok(
      Math.abs(trained + overtaken - budget) <= 0.02 * budget,
      `budget trained: ${trained} (and ${overtaken} overtaken) of ${budget}`,
    );
  }
  const [workers] = query(db, 'SELECT SUM(units_done) AS units FROM workers');
  const [accepted] = query(db, "SELECT COUNT(*) AS n FROM results WHERE status = 'accepted'");
  assert.equal(
    workers!['units'],
    workersPerResult * Number(accepted!['n']),
    `each accepted result credited to ${workersPerResult} worker(s)`,
  );
}
