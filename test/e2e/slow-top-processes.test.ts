/**
 * The slow top through real processes: `arbor bench distributed --top slow` (a coordinator
 * and two `arbor worker` processes on loopback) must finish with the top moved and the data
 * re-routed, at an accuracy comparable to the frozen run of the same job in the same test.
 * And a local cluster whose workers all leave before the job is done fails at once with
 * WORKERS_GONE instead of waiting for them forever.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { parseJobConfig } from '../../coordinator/job/config.ts';
import { runLocalCluster } from '../../cli/local-cluster.ts';
import type { DistributedBenchResult } from '../../bench/distributed.ts';
import { WorkersStopped } from '../../cli/worker-watch.ts';
import { spawnArbor } from '../helpers/processes.ts';
import { PROCESS_JOB } from '../helpers/process-job.ts';

const JOB = [...PROCESS_JOB, '--shard-epochs', '3', '--local-epochs', '1', '--unit-seconds', '3'];

async function bench(top: 'frozen' | 'slow'): Promise<DistributedBenchResult> {
  const run = spawnArbor(
    [
      'bench',
      'distributed',
      ...JOB,
      '--top',
      top,
      ...(top === 'slow' ? ['--reroute-every', '2'] : []),
      '--no-central',
      '--json',
    ],
    { ARBOR_LOG_LEVEL: 'warn' },
    { group: true },
  );
  assert.equal(await run.exited, 0, run.stderr.slice(-3000));
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as DistributedBenchResult;
}

void describe('the slow top through real processes', { timeout: 600_000 }, () => {
  void it('bench distributed --top slow finishes with the top moved and re-routed, as accurate as frozen', async () => {
    const frozen = await bench('frozen');
    const slow = await bench('slow');
    assert.equal(slow.top, 'slow');
    const activity = slow.top_activity!;
    assert.ok(activity.updates > 0, `path deltas merged: ${JSON.stringify(activity)}`);
    assert.ok(activity.reroutes.length >= 1, `re-routed: ${JSON.stringify(activity)}`);
    assert.ok(
      slow.units_per_worker.every((units) => units > 0),
      `both workers kept working: ${slow.units_per_worker.join(', ')}`,
    );
    assert.ok(frozen.dist_hard_test_acc > 0.6, `frozen ${frozen.dist_hard_test_acc}`);
    assert.ok(
      slow.dist_hard_test_acc >= frozen.dist_hard_test_acc - 0.03,
      `slow ${slow.dist_hard_test_acc} against frozen ${frozen.dist_hard_test_acc}`,
    );
  });

  void it('a cluster whose workers all leave before the end fails with WORKERS_GONE, naming why', async () => {
    const config = parseJobConfig({
      data: 'mnist',
      depth: 3,
      frozen: 1,
      leaf: 4,
      pretrain: { epochs: 1 },
      shard_epochs: 8,
      local_epochs: 1,
      unit_seconds: 1,
    });
    const started = Date.now();
    await assert.rejects(
      runLocalCluster({
        config,
        workers: 2,
        log: pino({ level: 'silent' }),
        workerArgs: ['--max-units', '1'],
      }),
      (error: unknown) => {
        assert.ok(error instanceof WorkersStopped, String(error));
        assert.equal(error.code, 'WORKERS_GONE');
        assert.match(error.message, /^all 2 workers exited before the job was done: local-1 \(exit 0: /);
        return true;
      },
    );
    assert.ok(Date.now() - started < 120_000, 'noticed within two minutes');
  });
});
