/**
 * `--idle-only` through a real worker loop and a real coordinator: the machine's owner starts
 * using it mid-unit and keeps at it, so the worker pauses, hands in what it trained as a
 * partial result (merged and credited), waits for the machine to be idle, and goes on with
 * the next unit. The machine's load and the pacer's clock are the test's.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { selectBackend } from '../../shared/backend.ts';
import { Pacer, type PacerClock } from '../../worker/pacer.ts';
import { runWorker } from '../../worker/run-worker.ts';
import { type SmallCoordinator, startSmallCoordinator } from '../helpers/small-job.ts';

const TOKEN = 'paced-token';
let small: SmallCoordinator;

before(async () => {
  await selectBackend('wasm');
  small = await startSmallCoordinator({
    token: TOKEN,
    settings: { shard_epochs: 4, local_epochs: 2, in_flight_span: 1 },
  });
});
after(async () => small?.close());

void describe('a volunteer who trains only while the machine is idle', { timeout: 240_000 }, () => {
  void it('hands in a unit its owner interrupts for long, then trains the next once idle', async () => {
    let now = 0;
    let steps = 0;
    // Busy from the 30th step of the first unit until the pacer has waited 60 s.
    let busyUntil = Infinity;
    const clock: PacerClock = {
      now: () => now,
      cpu: () => now,
      sleep: (ms) => {
        now += ms;
        return Promise.resolve();
      },
    };
    const pauses: boolean[] = [];
    const pacer = new Pacer(
      clock,
      () => {
        if (steps >= 30 && busyUntil === Infinity) busyUntil = now + 60_000;
        return now < busyUntil && steps >= 30 ? 0.9 : 0.01;
      },
      { idleOnly: true, handInAfterMs: 30_000, onPause: (paused) => pauses.push(paused) },
    );
    const summary = await runWorker({
      url: small.wsUrl,
      token: TOKEN,
      name: 'idle-only',
      backend: 'wasm',
      gpu: false,
      threads: 1,
      samplesPerSecond: 1000,
      maxUnits: 2,
      log: pino({ level: 'silent' }),
      pacing: {
        betweenSteps: () => {
          steps++;
          now += 50; // a step's training time on the pacer's clock
          return pacer.betweenSteps();
        },
        beforeWork: (signal) => pacer.beforeWork(signal),
        get handIn() {
          return pacer.handIn;
        },
      },
    });
    assert.deepEqual([summary.end, summary.units, summary.accepted], ['max-units', 2, 2]);
    assert.deepEqual(pauses, [true, false, true, false], 'paused mid-unit, then before the next');
    const { store } = small.coordinator;
    const [first, second] = store.listResults();
    const whole = (unitId: string) => {
      const unit = store.getUnit(unitId)!;
      return small.coordinator.job.schedule.unitSamples(store.getShard(unit.shard)!, unit);
    };
    assert.ok(first!.samples < whole(first!.unitId), `the interrupted unit: ${first!.samples} samples`);
    assert.ok(first!.samples > 0);
    assert.equal(second!.status, 'accepted');
    assert.equal(store.getWorker(first!.workerId)!.credit, first!.samples + second!.samples);
  });
});
