/**
 * Chaos: the coordinator process is killed with SIGKILL ten times during one job, at
 * moments drawn from a seeded generator, and restarted from its database on the same port;
 * two worker processes reconnect on their own, and are themselves SIGKILLed at random
 * moments (mid-unit: their leases expire) and restarted. The job finishes, every accepted result is
 * merged and credited exactly once, and the model is within 3 pp of the same job undisturbed.
 * (The random pause before each kill is the chaos schedule, not a wait for something.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createRng } from '../../shared/random.ts';
import { assertMergedExactlyOnce, query } from '../helpers/job-database.ts';
import { coordinatorUrl, spawnArbor, type Spawned, waitFor } from '../helpers/processes.ts';
import { PROCESS_JOB } from '../helpers/process-job.ts';

const dir = mkdtempSync(join(tmpdir(), 'arbor-chaos-'));
const KILLS = 10;
after(() => rmSync(dir, { recursive: true, force: true }));

const accepted = (db: string): number =>
  Number(query(db, "SELECT COUNT(*) AS n FROM results WHERE status = 'accepted'")[0]!['n']);

void describe('chaos', { timeout: 600_000 }, () => {
  void it(`a job survives ${KILLS} SIGKILLs of its coordinator and merges every result exactly once`, async (t) => {
    const job = (db: string) => [
      'coordinator',
      ...PROCESS_JOB,
      ...['--shard-epochs', '12', '--local-epochs', '1', '--lease-ms', '3000', '--heartbeat-ms', '300'],
      ...['--db', db, '--exit-when-done', '--json'],
    ];
    const finalAccuracy = (c: Spawned): number =>
      (JSON.parse(c.stdout.trim().split('\n').at(-1)!) as { hard_test_acc: number }).hard_test_acc;

    // The same job undisturbed, for reference.
    const calm = spawnArbor([...job(join(dir, 'calm.db')), '--port', '0']);
    const calmUrl = (await coordinatorUrl(calm)).replace('http', 'ws');
    const calmWorkers = ['one', 'two'].map((name) =>
      spawnArbor(['worker', '--url', calmUrl, '--name', name, '--backend', 'wasm']),
    );
    assert.equal(await calm.exited, 0, calm.stderr.slice(-2000));
    for (const worker of calmWorkers) await worker.exited;
    const reference = finalAccuracy(calm);

    const db = join(dir, 'chaos.db');
    const args = job(db);
    let coordinator = spawnArbor([...args, '--port', '0']);
    const port = new URL(await coordinatorUrl(coordinator)).port;
    const url = `ws://127.0.0.1:${port}`;
    const names = ['one', 'two'];
    const startWorker = (name: string) =>
      spawnArbor(['worker', '--url', url, '--name', name, '--backend', 'wasm']);
    const workers: Spawned[] = names.map(startWorker);
    const rng = createRng(2026);
    const pause = () => new Promise((resolve) => setTimeout(resolve, Math.floor(rng() * 700)));
    let workerKills = 0;
    try {
      for (let kill = 0; kill < KILLS; kill++) {
        // Some progress since the last restart, then a moment drawn at random.
        const before = kill === 0 ? 0 : accepted(db);
        await waitFor(
          `progress before kill ${kill + 1}`,
          () => (accepted(db) > before ? true : undefined),
          120_000,
        );
        await pause();
        if (rng() < 0.6) {
          // A volunteer's machine dies mid-unit; it comes back under the same name.
          const which = Math.floor(rng() * workers.length);
          workers[which]!.child.kill('SIGKILL');
          await workers[which]!.exited;
          workers[which] = startWorker(names[which]!);
          workerKills++;
          await pause();
        }
        coordinator.child.kill('SIGKILL');
        assert.equal(await coordinator.exited, null, `kill ${kill + 1} hit a live coordinator`);
        coordinator = spawnArbor([...args, '--port', port]);
        await coordinatorUrl(coordinator);
      }
      assert.equal(await coordinator.exited, 0, coordinator.stderr.slice(-2000));
      for (const worker of workers) assert.equal(await worker.exited, 0, worker.stderr.slice(-2000));
    } finally {
      for (const child of [coordinator, ...workers]) child.child.kill('SIGKILL');
    }
    const [jobRow] = query(db, 'SELECT phase FROM job');
    assert.equal(jobRow!['phase'], 'done');
    assertMergedExactlyOnce(db);
    const disturbed = finalAccuracy(coordinator);
    t.diagnostic(
      `hard test accuracy: ${disturbed} after ${KILLS} coordinator and ${workerKills} worker kills, ${reference} undisturbed`,
    );
    assert.ok(workerKills >= 3, `only ${workerKills} worker kills`);
    assert.ok(
      Math.abs(disturbed - reference) <= 0.03,
      `final hard test accuracy ${disturbed} after ${KILLS} kills, ${reference} undisturbed`,
    );
  });
});
