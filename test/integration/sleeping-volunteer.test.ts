/**
 * A laptop that sleeps mid-unit, through a real worker loop and a real coordinator: on waking
 * (the wall clock jumped between two steps) the worker hands in what the unit trained as a
 * partial result, which is merged and credited, and goes on with the next unit.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { selectBackend } from '../../shared/backend.ts';
import { runWorker } from '../../worker/run-worker.ts';
import { WakeWatch } from '../../worker/wake-watch.ts';
import { type SmallCoordinator, startSmallCoordinator } from '../helpers/small-job.ts';

const TOKEN = 'sleepy-token';
let small: SmallCoordinator;

before(async () => {
  await selectBackend('wasm');
  small = await startSmallCoordinator({
    token: TOKEN,
    settings: { shard_epochs: 4, local_epochs: 2, in_flight_span: 1 },
  });
});
after(async () => small?.close());

void describe('a volunteer whose laptop sleeps', { timeout: 240_000 }, () => {
  void it('hands in the unit it was training when the machine wakes, then trains the next', async () => {
    let steps = 0;
    let slept = 0;
    const woke: number[] = [];
    const watch = new WakeWatch(
      undefined,
      () => Date.now() + slept,
      (ms) => woke.push(ms),
    );
    const summary = await runWorker({
      url: small.wsUrl,
      token: TOKEN,
      name: 'laptop',
      backend: 'wasm',
      gpu: false,
      threads: 1,
      samplesPerSecond: 1000,
      maxUnits: 2,
      log: pino({ level: 'silent' }),
      pacing: {
        betweenSteps: () => {
          if (++steps === 30) slept += 45 * 60_000; // the lid closed for 45 minutes
          return watch.betweenSteps();
        },
        beforeWork: (signal) => watch.beforeWork(signal),
        get handIn() {
          return watch.handIn;
        },
      },
    });
    assert.deepEqual([summary.end, summary.units, summary.accepted], ['max-units', 2, 2]);
    assert.equal(woke.length, 1);
    assert.ok(woke[0]! >= 45 * 60_000, `slept ${woke[0]} ms`);
    const { store } = small.coordinator;
    const [first, second] = store.listResults();
    const unit = store.getUnit(first!.unitId)!;
    const whole = small.coordinator.job.schedule.unitSamples(store.getShard(unit.shard)!, unit);
    assert.ok(
      first!.samples > 0 && first!.samples < whole,
      `handed in ${first!.samples} of ${whole} samples`,
    );
    assert.equal(second!.status, 'accepted');
    assert.equal(store.getWorker(first!.workerId)!.credit, first!.samples + second!.samples);
  });
});
