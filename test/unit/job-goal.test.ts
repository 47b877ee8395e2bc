import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_PLATEAU, goalReached, parseUntil } from '../../coordinator/job/job-goal.ts';

const evals = (...losses: number[]) => losses.map((valLoss, i) => ({ valLoss, hardTestAcc: 0.5 + i / 100 }));

void describe("the job owner's goal (--until)", () => {
  void it('parses acc, time and plateau, comma-separated, and refuses anything else in one line', () => {
    assert.deepEqual(parseUntil('acc:0.86'), { accuracy: 0.86 });
    assert.deepEqual(parseUntil('time:600, plateau'), { seconds: 600, plateau: DEFAULT_PLATEAU });
    assert.deepEqual(parseUntil('plateau:3'), { plateau: 3 });
    for (const bad of ['acc:1.5', 'acc', 'time:-1', 'plateau:0', 'plateau:2.5', 'soon'])
      assert.throws(() => parseUntil(bad), /is not a goal: use acc:ACCURACY/, bad);
  });

  void it('is reached by the accuracy of the latest evaluation', () => {
    assert.equal(goalReached({ accuracy: 0.52 }, evals(1, 0.9), 10), undefined);
    assert.match(
      goalReached({ accuracy: 0.52 }, evals(1, 0.9, 0.8), 10)!,
      /accuracy 0.5200 reached the goal 0.52/,
    );
  });

  void it('is reached by the time since the job began', () => {
    assert.equal(goalReached({ seconds: 60 }, [], 59.9), undefined);
    assert.match(goalReached({ seconds: 60 }, [], 60)!, /trained for 60 s/);
  });

  void it('is reached when the validation loss has not improved over the last N evaluations', () => {
    assert.equal(goalReached({ plateau: 2 }, evals(1, 0.9, 0.8, 0.7), 0), undefined, 'still improving');
    assert.equal(goalReached({ plateau: 2 }, evals(1, 0.9), 0), undefined, 'too few evaluations to tell');
    assert.match(
      goalReached({ plateau: 2 }, evals(1, 0.8, 0.85, 0.8001), 0)!,
      /has not improved over the last 2 evaluations/,
    );
  });

  void it("judges a plateau only on the evaluations of the served model's own phase", () => {
    const all = evals(0.5, 0.9, 0.95, 0.97, 0.99);
    assert.match(goalReached({ plateau: 3 }, all, 0)!, /has not improved/, 'on every evaluation');
    assert.equal(goalReached({ plateau: 3 }, all, 0, all.slice(3)), undefined, 'too few of its phase yet');
  });

  void it('is never reached without a goal: the schedule ends the job', () => {
    assert.equal(goalReached({}, evals(1, 1, 1, 1, 1, 1, 1), 1e9), undefined);
  });
});
