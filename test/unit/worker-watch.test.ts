import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type ClusterState,
  EXIT_GRACE_MS,
  type WatchedWorker,
  WorkerWatch,
  stallLimitMs,
} from '../../cli/worker-watch.ts';

const running = (name: string): WatchedWorker => ({ name, exitCode: null, signalCode: null, lastWords: [] });
const exited = (name: string, code: number, said?: string): WatchedWorker => ({
  name,
  exitCode: code,
  signalCode: null,
  lastWords: said ? ['earlier', said] : [],
});
const training = (results: number): ClusterState => ({ phase: 'training', results });

void describe('WorkerWatch (the end of every wait on spawned workers)', () => {
  void it('fails once every worker has exited before the job is done, naming each exit', () => {
    let workers = [running('a'), running('b')];
    const watch = new WorkerWatch(() => workers, 60_000);
    assert.equal(watch.check(training(0), 0), undefined);
    workers = [exited('a', 1, 'coordinator refused: UNAUTHORIZED bad token'), running('b')];
    assert.equal(watch.check(training(1), 1_000), undefined, 'one is still running');
    workers = [workers[0]!, { ...running('b'), signalCode: 'SIGKILL' }];
    assert.equal(watch.check(training(1), 2_000), undefined, 'within the grace for a done message');
    const failure = watch.check(training(1), 2_000 + EXIT_GRACE_MS);
    assert.equal(failure?.code, 'WORKERS_GONE');
    assert.equal(
      failure?.message,
      'all 2 workers exited before the job was done: a (exit 1: coordinator refused: UNAUTHORIZED bad token); b (SIGKILL)',
    );
  });

  void it('never fails a job that is done, however its workers left', () => {
    const watch = new WorkerWatch(() => [exited('a', 0)], 1_000);
    for (const now of [0, 10_000, 100_000])
      assert.equal(watch.check({ phase: 'done', results: 3 }, now), undefined);
  });

  void it('fails when no result came for the stall limit while training, and not before', () => {
    const watch = new WorkerWatch(() => [running('a')], 60_000);
    assert.equal(watch.check({ phase: 'pretraining', results: 0 }, 0), undefined);
    assert.equal(
      watch.check({ phase: 'pretraining', results: 0 }, 500_000),
      undefined,
      'pretraining is not a stall',
    );
    assert.equal(watch.check(training(0), 500_000), undefined, 'the clock starts with training');
    assert.equal(watch.check(training(2), 550_000), undefined, 'a result is progress');
    assert.equal(watch.check(training(2), 609_999), undefined);
    const failure = watch.check(training(2), 610_000);
    assert.equal(failure?.code, 'NO_PROGRESS');
    assert.match(failure!.message, /^no result from any worker for 60 s \(1 of 1 workers still running\)/);
  });

  void it('allows five units of time, and at least three minutes, before calling a stall', () => {
    assert.equal(stallLimitMs(60), 300_000);
    assert.equal(stallLimitMs(1), 180_000);
  });
});
