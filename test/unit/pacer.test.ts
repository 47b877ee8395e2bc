/**
 * A volunteer's limits on a hand-driven clock: `--max-cpu` rests until the CPU time of a
 * stretch of training is the share asked for; `--idle-only` pauses at the first look after the machine gets busy,
 * resumes once it has been idle a while, and hands the unit in when the pause lasts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pacer, type PacerClock } from '../../worker/pacer.ts';

/** Sleeping moves the clock; training a step is `train(ms)`. */
function handClock(): PacerClock & { train(ms: number): void; slept: number } {
  let now = 0;
  let cpu = 0;
  return {
    slept: 0,
    now: () => now,
    cpu: () => cpu,
    train(ms: number) {
      now += ms;
      cpu += ms;
    },
    sleep(ms: number) {
      now += ms;
      this.slept += ms;
      return Promise.resolve();
    },
  };
}

void describe('--max-cpu', () => {
  void it('keeps training to the share asked for', async () => {
    for (const share of [0.25, 0.5, 0.9]) {
      const clock = handClock();
      const pacer = new Pacer(clock, () => 0, { maxCpu: share });
      let trained = 0;
      for (let step = 0; step < 500; step++) {
        clock.train(17);
        trained += 17;
        await pacer.betweenSteps();
      }
      const measured = trained / (trained + clock.slept);
      assert.ok(
        Math.abs(measured - share) < 0.01,
        `asked ${share}, trained ${measured.toFixed(3)} of the time`,
      );
    }
  });

  void it('never rests when it may take a whole core', async () => {
    const clock = handClock();
    const pacer = new Pacer(clock, () => 0, { maxCpu: 1 });
    for (let step = 0; step < 100; step++) {
      clock.train(20);
      await pacer.betweenSteps();
    }
    assert.equal(clock.slept, 0);
  });
});

void describe('--idle-only', () => {
  /** Others' load: busy between `from` and `to` on the clock. */
  const busyBetween = (clock: PacerClock, from: number, to: number) => () =>
    clock.now() >= from && clock.now() < to ? 0.8 : 0.02;

  void it('pauses within a second of the machine being used, and resumes once it is idle again', async () => {
    const clock = handClock();
    const pauses: boolean[] = [];
    const pacer = new Pacer(clock, busyBetween(clock, 3_000, 10_000), {
      idleOnly: true,
      idleForMs: 5_000,
      onPause: (paused) => pauses.push(paused),
    });
    let trainedWhileBusy = 0;
    while (clock.now() < 20_000) {
      clock.train(20);
      if (clock.now() >= 3_000 && clock.now() < 10_000) trainedWhileBusy += 20;
      await pacer.betweenSteps();
    }
    assert.deepEqual(pauses, [true, false]);
    assert.ok(trainedWhileBusy <= 1_020, `trained ${trainedWhileBusy} ms while the machine was in use`);
    assert.ok(clock.slept >= 7_000 + 5_000 - 1_000, `paused ${clock.slept} ms`);
    assert.equal(pacer.handIn, false, 'a short pause keeps the unit');
  });

  void it('hands the unit in when the pause lasts, and waits for idle before the next', async () => {
    const clock = handClock();
    const pacer = new Pacer(clock, busyBetween(clock, 1_000, 100_000), {
      idleOnly: true,
      idleForMs: 5_000,
      handInAfterMs: 30_000,
    });
    while (!pacer.handIn) {
      clock.train(20);
      await pacer.betweenSteps();
    }
    assert.ok(clock.now() >= 31_000 && clock.now() < 33_000, `handed in at ${clock.now()} ms`);
    await pacer.beforeWork();
    assert.equal(pacer.handIn, false);
    assert.ok(clock.now() >= 100_000 + 5_000, `asked for work at ${clock.now()} ms, while busy until 100 s`);
  });

  void it('stops waiting when the volunteer stops the worker', async () => {
    const clock = handClock();
    const stop = new AbortController();
    const pacer = new Pacer(clock, () => 1, { idleOnly: true });
    const originalSleep = clock.sleep.bind(clock);
    clock.sleep = (ms) => {
      if (clock.now() > 60_000) stop.abort();
      return originalSleep(ms);
    };
    await pacer.beforeWork(stop.signal);
    assert.ok(clock.now() < 63_000);
  });
});
