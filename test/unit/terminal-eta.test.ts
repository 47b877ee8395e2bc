/** The worker's terminal ETA is the unit's own average pace: one slow step barely moves it. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { remainingText } from '../../worker/terminal-progress.ts';

void describe('the time left in a unit', () => {
  void it('counts down steadily at a steady pace, and a slow step moves it by little', () => {
    // 100 steps at 50 ms each: 5 s in all.
    assert.equal(remainingText(10, 100, 500), '5s'); // 4.5 s, rounded
    assert.equal(remainingText(50, 100, 2_500), '3s'); // 2.5 s, rounded up
    assert.equal(remainingText(90, 100, 4_500), '1s');
    // One step of 1 s in the middle: 51 steps in 3.5 s.
    assert.equal(remainingText(51, 100, 3_500), '3s');
  });

  void it('says minutes past a minute, and nothing before the first step', () => {
    assert.equal(remainingText(1, 100, 1_000), '1m39s');
    assert.equal(remainingText(0, 100, 0), '–');
  });
});
