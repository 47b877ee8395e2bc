/**
 * Quorum mode with real processes: a coordinator with `--quorum 2` and two worker
 * processes. Every unit is trained twice, by different workers from the same base and
 * seed; the two deltas agree (measured: relative distance 0 on the wasm backend), each unit
 * is merged once, and both workers are credited for every unit.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { assertMergedExactlyOnce, query } from '../helpers/job-database.ts';
import { coordinatorUrl, spawnArbor } from '../helpers/processes.ts';
import { PROCESS_JOB } from '../helpers/process-job.ts';

const dir = mkdtempSync(join(tmpdir(), 'arbor-quorum-'));
after(() => rmSync(dir, { recursive: true, force: true }));

void describe('quorum', { timeout: 300_000 }, () => {
  void it('two workers compute every unit alike; each is merged once and credited to both', async (t) => {
    const db = join(dir, 'quorum.db');
    const coordinator = spawnArbor([
      'coordinator',
      ...PROCESS_JOB,
      ...['--shard-epochs', '2', '--local-epochs', '1', '--quorum', '2', '--port', '0'],
      ...['--db', db, '--exit-when-done', '--json'],
    ]);
    const url = (await coordinatorUrl(coordinator)).replace('http', 'ws');
    const workers = ['one', 'two'].map((name) =>
      spawnArbor(['worker', '--url', url, '--name', name, '--backend', 'wasm']),
    );
    try {
      assert.equal(await coordinator.exited, 0, coordinator.stderr.slice(-2000));
      for (const worker of workers) assert.equal(await worker.exited, 0, worker.stderr.slice(-2000));
    } finally {
      for (const child of [coordinator, ...workers]) child.child.kill('SIGKILL');
    }
    assertMergedExactlyOnce(db, 2);
    const units = Number(query(db, 'SELECT COUNT(*) AS n FROM units')[0]!['n']);
    const results = query(db, 'SELECT status, samples FROM results');
    assert.equal(results.length, units, 'one verdict a unit');
    assert.ok(
      results.every((r) => r['status'] === 'accepted'),
      JSON.stringify(results),
    );
    const accepted = query(db, "SELECT data FROM events WHERE kind = 'accepted'").map(
      (r) =>
        JSON.parse(String(r['data'])) as { worker: string; agreed_with?: string; quorum_distance?: number },
    );
    assert.equal(accepted.length, units);
    for (const event of accepted) {
      assert.ok(event.agreed_with !== undefined && event.agreed_with !== event.worker, JSON.stringify(event));
      assert.ok((event.quorum_distance ?? Infinity) <= 0.05);
    }
    const samples = results.reduce((sum, r) => sum + Number(r['samples']), 0);
    const credits = query(db, 'SELECT credit FROM workers ORDER BY id').map((r) => Number(r['credit']));
    assert.equal(
      credits.reduce((a, b) => a + b, 0),
      2 * samples,
      'every unit credited to both of its workers',
    );
    const events = query(db, 'SELECT data FROM events').map((r) => String(r['data']));
    assert.ok(events.some((data) => data.includes('"phase":"done"')));
    assert.deepEqual(
      events.filter((data) => data.includes(dir)),
      [],
      'no file path of the coordinator reaches the public event stream',
    );
    const distances = accepted.map((e) => e.quorum_distance!);
    t.diagnostic(
      `units ${units}; largest relative distance between the two deltas ${Math.max(...distances)}`,
    );
  });
});
