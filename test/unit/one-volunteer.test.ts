/**
 * A volunteer token may connect several machines (`w-<id>`, `w-<id>-2`, …): together they
 * are one volunteer, who never computes both halves of a quorum, never holds two copies of
 * one unit, and holds a bounded number of leases for a bounded time.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { leaseLifetimeMs } from '../../coordinator/core/leases.ts';
import type { Assign } from '../../proto/messages.ts';
import { encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import {
  type SeededCore,
  helloAs as hello,
  seededCore,
  smallDelta,
  volunteerIdentity as volunteer,
} from '../helpers/small-job.ts';

let seeded: SeededCore | undefined;
afterEach(() => seeded?.cleanup());

async function setup(settings: Record<string, unknown> = {}): Promise<SeededCore> {
  seeded = await seededCore(settings);
  return seeded;
}

function submitSmall(s: SeededCore, workerId: string, assign: Assign) {
  return s.core.submit({
    unitId: assign.unit_id,
    workerId,
    leaseToken: assign.lease_token,
    body: encodeFFF(smallDelta(s.job.subtreeShape)),
    metrics: {
      train_loss: 0.5,
      samples: s.job.schedule.unitSamples(s.store.getShard(assign.shard)!, { id: assign.unit_id }),
      seconds: 1,
    },
  });
}

void describe("a volunteer's connections are one volunteer", () => {
  void it('never gets the second half of its own quorum on another connection', async () => {
    const s = await setup({ validation: { quorum: 2 } });
    const first = s.core.connect(hello('m1'), volunteer('aaaaaaaaaaaa')).id;
    const second = s.core.connect(hello('m2'), volunteer('aaaaaaaaaaaa')).id;
    assert.equal(second, `${first}-2`);
    const assign = s.core.assign(first) as Assign;
    assert.equal(submitSmall(s, first, assign).response.held, true);
    const other = s.core.assign(second);
    assert.ok(other.type !== 'assign' || other.unit_id !== assign.unit_id, 'not its own held unit');
    const stranger = s.core.connect(hello('bob'), volunteer('bbbbbbbbbbbb')).id;
    assert.equal((s.core.assign(stranger) as Assign).unit_id, assign.unit_id, 'another volunteer gets it');
  });

  void it('never holds a backup copy of a unit one of its connections holds', async () => {
    const s = await setup();
    const { store } = s;
    const owner = 'w-aaaaaaaaaaaa';
    store.createUnit({ id: 'u', shard: 0, baseVersion: 0, createdMs: 0 });
    assert.equal(store.leaseUnit(owner, 0, 1000, 't1', [], owner)?.id, 'u');
    store.createUnit({ id: 'u-b1', shard: 0, baseVersion: 0, createdMs: 0, backupOf: 'u' });
    assert.equal(store.leaseUnit(`${owner}-2`, 0, 1000, 't2', [], owner), undefined);
    assert.equal(store.leaseUnit('w-bbbbbbbbbbbb', 0, 1000, 't3', [], 'w-bbbbbbbbbbbb')?.id, 'u-b1');
  });

  void it('holds at most four times max_leases_per_worker leases over all its connections', async () => {
    const s = await setup({ shard_epochs: 24 });
    const answers = [1, 2, 3, 4, 5].map((n) => {
      const id = s.core.connect(hello(`m${n}`), volunteer('aaaaaaaaaaaa')).id;
      return s.core.assign(id).type;
    });
    assert.deepEqual(answers, ['assign', 'assign', 'assign', 'assign', 'no_work']);
    const stranger = s.core.connect(hello('bob'), volunteer('bbbbbbbbbbbb')).id;
    assert.equal(s.core.assign(stranger).type, 'assign');
  });

  void it('keeps a lease alive by heartbeats for eight unit times at most, not max_lease_ms', async () => {
    const s = await setup({ lease_ms: 500, unit_seconds: 1 });
    assert.equal(leaseLifetimeMs(s.job.config), 8_000);
    const id = s.core.connect(hello('idle'), volunteer('aaaaaaaaaaaa')).id;
    const assign = s.core.assign(id) as Assign;
    const beat = {
      type: 'heartbeat',
      unit_id: assign.unit_id,
      lease_token: assign.lease_token,
      step: 1,
      total_steps: 2,
    } as const;
    let renewed = 0;
    while (s.core.heartbeat(id, beat)) {
      renewed++;
      s.clock.advance(450);
    }
    assert.equal(renewed, 18, 'renewed up to 8 s after the lease began, then refused');
  });
});
