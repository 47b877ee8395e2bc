/**
 * When the job ends, the coordinator knows which volunteers have yet to hear it: those seen
 * lately that lost their socket (a killed process, a dropped link, a coordinator restart)
 * and have not connected since. It lingers for them before it exits, so none of them retries
 * forever against a coordinator that is gone; those that left on purpose are not waited for.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { RECONNECT_PATIENCE_MS } from '../../coordinator/core/job-end-notice.ts';
import type { Assign } from '../../proto/messages.ts';
import { encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import { type SeededCore, helloAs as hello, seededCore, smallDelta } from '../helpers/small-job.ts';

let seeded: SeededCore | undefined;
afterEach(() => seeded?.cleanup());

/** Runs the whole (four-unit) job through `worker`, one unit at a time. */
async function finishJob(s: SeededCore, worker: string): Promise<void> {
  for (;;) {
    s.clock.advance(1000);
    const assign = s.core.assign(worker);
    if (assign.type !== 'assign') break;
    const unit = assign as Assign;
    const outcome = s.core.submit({
      unitId: unit.unit_id,
      workerId: worker,
      leaseToken: unit.lease_token,
      body: encodeFFF(smallDelta(s.job.subtreeShape)),
      metrics: {
        train_loss: 0.5,
        samples: s.job.schedule.unitSamples(s.store.getShard(unit.shard)!, { id: unit.unit_id }),
        seconds: 1,
      },
    });
    assert.equal(outcome.code, undefined);
  }
  await s.core.done;
}

void describe('the end of the job reaches every volunteer', () => {
  void it('waits for a volunteer whose socket was lost until it connects again', async () => {
    const s = (seeded = await seededCore({ eval_every: 1 }));
    const finisher = s.core.connect(hello('finisher')).id;
    const lost = s.core.connect(hello('lost'));
    s.core.disconnect(lost.id, false, false);
    assert.equal(s.core.unheardOfEnd, 0, 'nothing to hear while the job runs');
    await finishJob(s, finisher);
    assert.equal(s.core.unheardOfEnd, 1, 'the lost volunteer has not heard the end');
    s.clock.advance(1000);
    assert.equal(s.core.unheardOfEnd, 1, 'and is still waited for');
    // It comes back as a second process under the same name: that is the same volunteer.
    const back = s.core.connect(hello('lost'));
    assert.equal(back.id, lost.id);
    assert.equal(s.core.unheardOfEnd, 0);
    assert.deepEqual(s.core.assign(back.id), s.core.assign(finisher), 'told the job is done');
  });

  void it('stops waiting once a lost volunteer has stayed away too long to be alive', async () => {
    const s = (seeded = await seededCore({ eval_every: 1 }));
    const finisher = s.core.connect(hello('finisher')).id;
    s.core.disconnect(s.core.connect(hello('lost')).id, false, false);
    await finishJob(s, finisher);
    assert.equal(s.core.unheardOfEnd, 1);
    s.clock.advance(RECONNECT_PATIENCE_MS);
    assert.equal(s.core.unheardOfEnd, 0);
  });

  void it('does not wait for a volunteer that left on purpose, nor one lost long ago', async () => {
    const s = (seeded = await seededCore({ eval_every: 1 }));
    const finisher = s.core.connect(hello('finisher')).id;
    s.core.disconnect(s.core.connect(hello('long-gone')).id, false, false);
    s.clock.advance(RECONNECT_PATIENCE_MS + 1);
    s.core.disconnect(s.core.connect(hello('stopped')).id, false, true);
    await finishJob(s, finisher);
    assert.equal(s.core.unheardOfEnd, 0);
  });

  void it('counts a second connection of one volunteer as that volunteer', async () => {
    const s = (seeded = await seededCore({ eval_every: 1 }));
    const finisher = s.core.connect(hello('finisher')).id;
    const first = s.core.connect(hello('twice')).id;
    const second = s.core.connect(hello('twice')).id;
    assert.equal(second, `${first}-2`);
    s.core.disconnect(second, false, false);
    await finishJob(s, finisher);
    assert.equal(s.core.unheardOfEnd, 0, 'its first connection is still open and hears the end');
    s.core.disconnect(first, false, false);
    assert.equal(s.core.unheardOfEnd, 0, 'it was told before it went');
  });
});
