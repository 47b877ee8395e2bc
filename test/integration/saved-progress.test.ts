/**
 * A browser tab that closes mid-unit (its socket goes away) after saving a checkpoint: the
 * coordinator cuts the unit where the checkpoint ends, gives the rest out at once, and keeps
 * the saved part leased for the tab's next visit, which hands it in and is credited. Without a
 * checkpoint, or with a claim the unit cannot hold, the unit goes back out whole at once.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { leaseLifetimeMs } from '../../coordinator/core/leases.ts';
import type { Assign } from '../../proto/messages.ts';
import { encodeUnitDelta } from '../../shared/fff/unit-delta.ts';
import { type SeededCore, helloAs, seededCore, smallDelta, volunteerIdentity } from '../helpers/small-job.ts';

const opened: SeededCore[] = [];
afterEach(() => opened.splice(0).forEach((core) => core.cleanup()));

async function tabWithUnit(): Promise<{
  s: SeededCore;
  worker: string;
  assign: Assign;
  whole: number;
  batch: number;
}> {
  const s = await seededCore({ shard_epochs: 8, local_epochs: 8, lease_ms: 60_000, heartbeat_ms: 5_000 });
  opened.push(s);
  const worker = s.core.connect(helloAs('tab'), volunteerIdentity('aaaaaaaaaaaa')).id;
  const assign = s.core.assign(worker);
  assert.equal(assign.type, 'assign');
  const unit = s.store.getUnit((assign as Assign).unit_id)!;
  const shard = s.store.getShard(unit.shard)!;
  return {
    s,
    worker,
    assign: assign as Assign,
    whole: s.job.schedule.unitSamples(shard, unit),
    batch: s.job.schedule.batchOf(shard),
  };
}

const heartbeat = (assign: Assign, savedSamples?: number) => ({
  type: 'heartbeat' as const,
  unit_id: assign.unit_id,
  lease_token: assign.lease_token,
  step: 3,
  total_steps: 10,
  ...(savedSamples !== undefined ? { saved_samples: savedSamples } : {}),
});

void describe('saved progress of a closed tab', () => {
  void it('keeps the saved part for the next visit, which is credited for it, and gives the rest out at once', async () => {
    const { s, worker, assign, whole, batch } = await tabWithUnit();
    const saved = 3 * batch;
    assert.ok(saved < whole - batch, `the unit (${whole} samples) is longer than the part saved`);
    assert.equal(s.core.heartbeat(worker, heartbeat(assign, saved)), true);
    s.core.disconnect(worker, true);

    const kept = s.store.getUnit(assign.unit_id)!;
    assert.equal(kept.state, 'leased', 'the saved part stays leased to the tab');
    assert.equal(kept.deadlineMs, s.clock.now() + leaseLifetimeMs(s.job.config));
    const rest = s.store
      .listUnits()
      .find((u) => u.id !== kept.id && u.state === 'ready' && u.shard === kept.shard);
    assert.ok(rest, 'the rest of the unit is out again');
    assert.ok(Math.abs(rest.window!.from - kept.window!.to) < 1e-12, 'the rest starts where the part ends');
    const shard = s.store.getShard(kept.shard)!;
    assert.ok(Math.abs(s.job.schedule.unitSamples(shard, kept) - saved) <= 1, 'the part is what was saved');

    // Twice a lease later, heartbeats silent all the while: the part is still kept.
    s.clock.advance(2 * s.job.config.lease_ms);
    s.core.expire();
    assert.equal(s.store.getUnit(kept.id)!.state, 'leased');

    const next = s.core.connect(helloAs('tab'), volunteerIdentity('aaaaaaaaaaaa')).id;
    assert.equal(next, worker, 'the next visit speaks for the same volunteer');
    const outcome = s.core.submit({
      unitId: assign.unit_id,
      workerId: worker,
      leaseToken: assign.lease_token,
      body: encodeUnitDelta(smallDelta(s.job.subtreeShape)),
      metrics: { train_loss: 1, samples: saved, seconds: 5 },
    });
    assert.equal(outcome.response.status, 'accepted', JSON.stringify(outcome.response));
    assert.equal(s.store.getUnit(kept.id)!.state, 'accepted');
    assert.equal(s.store.getWorker(worker)!.credit, saved);
    assert.equal(s.store.getUnit(rest.id)!.state, 'ready', 'the rest is not touched by the hand-in');
  });

  void it('gives a unit back whole at once when the tab saved nothing, or claims more than the unit holds', async () => {
    for (const saved of [undefined, 0, 10_000_000]) {
      const { s, worker, assign } = await tabWithUnit();
      s.core.heartbeat(worker, heartbeat(assign, saved));
      const before = s.store.getUnit(assign.unit_id)!;
      const units = s.store.listUnits().length;
      s.core.disconnect(worker, true);
      const after = s.store.getUnit(assign.unit_id)!;
      assert.equal(after.state, 'ready', `saved ${saved}: back out`);
      assert.deepEqual(after.window, before.window, `saved ${saved}: not cut`);
      assert.equal(s.store.listUnits().length, units, `saved ${saved}: no unit cut from it`);
    }
  });

  void it('keeps nothing for a socket that was merely lost: its lease runs on as before', async () => {
    const { s, worker, assign } = await tabWithUnit();
    s.core.heartbeat(worker, heartbeat(assign, 100));
    const before = s.store.getUnit(assign.unit_id)!;
    s.core.disconnect(worker, false);
    const after = s.store.getUnit(assign.unit_id)!;
    assert.deepEqual(
      [after.state, after.deadlineMs, after.window],
      ['leased', before.deadlineMs, before.window],
    );
    // Back, but saying nothing more of a checkpoint, then gone: nothing is kept from before.
    const again = s.core.connect(helloAs('tab'), volunteerIdentity('aaaaaaaaaaaa')).id;
    s.core.disconnect(again, true);
    assert.deepEqual([s.store.getUnit(assign.unit_id)!.state, s.store.listUnits().length], ['ready', 1]);
  });
});
