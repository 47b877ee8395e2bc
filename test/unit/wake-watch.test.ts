import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WakeWatch } from '../../worker/wake-watch.ts';
import type { Pacing } from '../../worker/volunteer-ports.ts';

void describe('WakeWatch (a laptop that slept mid-unit)', () => {
  const watch = (inner?: Pacing) => {
    const clock = { now: 1_000_000 };
    const woke: number[] = [];
    const pacing = new WakeWatch(
      inner,
      () => clock.now,
      (ms) => woke.push(ms),
      20_000,
    );
    const step = async (ms: number): Promise<void> => {
      clock.now += ms;
      await pacing.betweenSteps();
    };
    return { clock, woke, pacing, step };
  };

  void it('hands the unit in after a gap between two steps longer than any step, and says how long', async () => {
    const { woke, pacing, step } = watch();
    await pacing.beforeWork();
    for (let i = 0; i < 50; i++) await step(150);
    assert.equal(pacing.handIn, false);
    await step(95_000);
    assert.equal(pacing.handIn, true);
    assert.deepEqual(woke, [95_000]);
    await step(150);
    assert.deepEqual(woke, [95_000], 'told once');
    await pacing.beforeWork();
    assert.equal(pacing.handIn, false, 'the next unit starts afresh');
  });

  void it('does not count the time before a unit, or the inner pacing’s rests, as sleep', async () => {
    const state = { handIn: false };
    const t = watch();
    const inner: Pacing = {
      get handIn() {
        return state.handIn;
      },
      beforeWork: () => Promise.resolve(void (t.clock.now += 60_000)),
      betweenSteps: () => Promise.resolve(void (t.clock.now += 45_000)), // --idle-only waiting
    };
    const { woke } = t;
    const pacing = new WakeWatch(
      inner,
      () => t.clock.now,
      (ms) => woke.push(ms),
      20_000,
    );
    await pacing.beforeWork();
    t.clock.now += 30_000; // fetching the unit's blobs
    for (let i = 0; i < 5; i++) {
      t.clock.now += 100;
      await pacing.betweenSteps();
    }
    assert.deepEqual(woke, []);
    assert.equal(pacing.handIn, false);
    state.handIn = true;
    assert.equal(pacing.handIn, true, 'the inner pacing can still hand the unit in');
  });
});
