/**
 * The distributed loop end to end: a real coordinator process and real worker processes
 * over loopback, a real SQLite file, embedded MNIST.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readFFF } from '../../shared/checkpoint/fff-file.ts';
import { assertMergedExactlyOnce, query } from '../helpers/job-database.ts';
import { coordinatorUrl, spawnArbor, waitFor } from '../helpers/processes.ts';
import { PROCESS_JOB } from '../helpers/process-job.ts';

const dir = mkdtempSync(join(tmpdir(), 'arbor-dist-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SMALL_JOB = PROCESS_JOB;

void describe('distributed training over loopback', { timeout: 300_000 }, () => {
  void it('two workers train a small job to completion; the final model is written and evaluable', async () => {
    const db = join(dir, 'two.db');
    const out = join(dir, 'two-final.safetensors');
    const coordinator = spawnArbor([
      'coordinator',
      ...SMALL_JOB,
      '--shard-epochs',
      '4',
      '--local-epochs',
      '2',
      '--db',
      db,
      '--port',
      '0',
      '--out',
      out,
      '--exit-when-done',
      '--json',
    ]);
    const url = (await coordinatorUrl(coordinator)).replace('http', 'ws');
    const workers = ['alpha', 'beta'].map((name) => spawnArbor(['worker', '--url', url, '--name', name]));
    assert.equal(await coordinator.exited, 0, coordinator.stderr.slice(-2000));
    const result = JSON.parse(coordinator.stdout.trim().split('\n').at(-1)!) as Record<
      string,
      number | string
    >;
    assert.ok(Number(result['hard_test_acc']) > 0.5, `accuracy ${result['hard_test_acc']}`);
    assert.equal(result['final_model'], out);
    const model = await readFFF(out);
    assert.equal(model.shape.depth, 4);
    for (const worker of workers) assert.equal(await worker.exited, 0, worker.stderr.slice(-2000));
    assert.ok(
      workers.every((w) => /"end":"done"/.test(w.stderr)),
      'workers were told the job is done',
    );
    assertMergedExactlyOnce(db);
    const [evals] = query(db, 'SELECT COUNT(*) AS n FROM evals');
    assert.ok(Number(evals!['n']) >= 2, 'evaluated on a schedule and at the end');
    const active = query(db, 'SELECT name, units_done FROM workers WHERE units_done > 0');
    assert.equal(active.length, 2, 'both workers contributed');
  });

  void it('a worker killed mid-unit: its lease expires, the unit is reissued, the job completes', async () => {
    const db = join(dir, 'killed.db');
    const coordinator = spawnArbor([
      'coordinator',
      ...SMALL_JOB,
      '--shard-epochs',
      '2',
      '--local-epochs',
      '2',
      '--lease-ms',
      '1500',
      '--heartbeat-ms',
      '200',
      '--db',
      db,
      '--port',
      '0',
      '--exit-when-done',
      '--json',
    ]);
    const url = (await coordinatorUrl(coordinator)).replace('http', 'ws');
    const doomed = spawnArbor(['worker', '--url', url, '--name', 'doomed']);
    await waitFor('the doomed worker to start a unit', () =>
      /training unit/.test(doomed.stderr) ? true : undefined,
    );
    doomed.child.kill('SIGKILL');
    await doomed.exited;
    const survivor = spawnArbor(['worker', '--url', url, '--name', 'survivor']);
    // The doomed volunteer's machine comes back after the job ended: the coordinator, which
    // lost it, has waited to tell it so, instead of leaving it to retry a coordinator gone.
    await waitFor(
      'the job to end',
      () => (/hard_test_acc/.test(coordinator.stdout) ? true : undefined),
      120_000,
    );
    assert.equal(await survivor.exited, 0);
    const returning = spawnArbor(['worker', '--url', url, '--name', 'doomed']);
    assert.equal(await returning.exited, 0, returning.stderr.slice(-2000));
    assert.match(returning.stderr, /"end":"done"/);
    assert.equal(await coordinator.exited, 0, coordinator.stderr.slice(-2000));
    assert.match(coordinator.stderr, /leases expired/);
    const reissued = query(db, 'SELECT id, attempts FROM units WHERE attempts > 0');
    assert.ok(reissued.length >= 1, 'the killed worker’s unit was reissued');
    assertMergedExactlyOnce(db);
    const [doomedRow] = query(db, "SELECT units_done FROM workers WHERE name = 'doomed'");
    assert.equal(doomedRow!['units_done'], 0);
  });

  void it('the coordinator SIGKILLed mid-job and restarted from its database completes exactly once', async () => {
    const db = join(dir, 'restart.db');
    const args = [
      'coordinator',
      ...SMALL_JOB,
      '--shard-epochs',
      '8',
      '--local-epochs',
      '2',
      '--lease-ms',
      '20000',
      '--heartbeat-ms',
      '300',
      '--db',
      db,
      '--exit-when-done',
      '--json',
    ];
    const first = spawnArbor([...args, '--port', '0']);
    const httpUrl = await coordinatorUrl(first);
    const port = new URL(httpUrl).port;
    const url = httpUrl.replace('http', 'ws');
    const workers = ['one', 'two'].map((name) => spawnArbor(['worker', '--url', url, '--name', name]));
    await waitFor('some results to be merged', () => {
      if (!existsSync(db)) return undefined;
      const [row] = query(db, "SELECT COUNT(*) AS n FROM results WHERE status = 'accepted'");
      return Number(row!['n']) >= 2 ? true : undefined;
    });
    first.child.kill('SIGKILL');
    assert.equal(await first.exited, null);
    // Units are cut on demand: between two units a worker holds none, so the job's phase says it.
    const [job] = query(db, 'SELECT phase FROM job');
    assert.equal(job!['phase'], 'training', 'killed mid-job');
    const second = spawnArbor([...args, '--port', port]);
    assert.equal(await second.exited, 0, second.stderr.slice(-2000));
    assert.match(second.stderr, /resuming the job/);
    for (const worker of workers) assert.equal(await worker.exited, 0, worker.stderr.slice(-2000));
    assertMergedExactlyOnce(db);
  });
});
