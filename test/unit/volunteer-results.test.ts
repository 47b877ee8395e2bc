/**
 * Trust in volunteers, on a seeded core with a hand-driven clock (cooldowns are read off
 * the clock, not waited for). Standing, as BOINC's host reliability: a worker whose results
 * keep being rejected waits longer and longer for its next unit, and once others are
 * accepted meanwhile, gets none. Quorum: a unit computed by two workers is merged only when
 * their deltas agree. Partial results: what a stopped worker trained, the rest a unit of its own.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { Submission } from '../../coordinator/core/acceptance.ts';
import type { Assign, Hello, NoWork } from '../../proto/messages.ts';
import { PROTOCOL_VERSION } from '../../proto/version.ts';
import { encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import { type FFFWeights, zeroWeights } from '../../shared/fff/weights.ts';
import { type SeededCore, seededCore, smallDelta } from '../helpers/small-job.ts';

let seeded: SeededCore | undefined;
afterEach(() => seeded?.cleanup());

const STANDING = { cooldown_after: 2, cooldown_ms: 10_000, bench_after: 4 };

const hello = (name: string): Hello => ({
  type: 'hello',
  protocol: PROTOCOL_VERSION,
  name,
  capabilities: { backend: 'wasm', threads: 1, gpu: false, samples_per_s: 1000 },
});

function submit(s: SeededCore, workerId: string, assign: Assign, delta: FFFWeights): string {
  const submission: Submission = {
    unitId: assign.unit_id,
    workerId,
    leaseToken: assign.lease_token,
    body: encodeFFF(delta),
    metrics: {
      train_loss: 0.5,
      samples: s.job.schedule.unitSamples(s.store.getShard(assign.shard)!, { id: assign.unit_id }),
      seconds: 1,
    },
  };
  return s.core.submit(submission).response.status;
}

const lease = (s: SeededCore, workerId: string): Assign => {
  const answer = s.core.assign(workerId);
  assert.equal(answer.type, 'assign', JSON.stringify(answer));
  return answer as Assign;
};

const refused = (s: SeededCore, workerId: string): NoWork => {
  const answer = s.core.assign(workerId);
  assert.equal(answer.type, 'no_work', JSON.stringify(answer));
  return answer as NoWork;
};

/** One zero delta from `workerId`: rejected by shows-work. */
function failOnce(s: SeededCore, workerId: string): void {
  assert.equal(submit(s, workerId, lease(s, workerId), zeroWeights(s.job.subtreeShape)), 'rejected');
}

async function setup(): Promise<SeededCore> {
  seeded = await seededCore({ standing: STANDING, validation: { max_retries: 50 }, shard_epochs: 8 });
  return seeded;
}

void describe('standing', () => {
  void it('a worker waits after repeated rejections, twice as long after each further one', async () => {
    const s = await setup();
    const mallory = s.core.connect(hello('mallory')).id;
    failOnce(s, mallory);
    failOnce(s, mallory);
    const first = refused(s, mallory);
    assert.equal(first.retry_after_ms, 10_000);
    assert.match(first.reason ?? '', /last 2 results were rejected/);
    s.clock.advance(10_000);
    failOnce(s, mallory);
    assert.equal(refused(s, mallory).retry_after_ms, 20_000);
    s.clock.advance(19_999);
    refused(s, mallory);
    s.clock.advance(1);
    lease(s, mallory);
  });

  void it("a worker's further connections share its standing", async () => {
    const s = await setup();
    const first = s.core.connect(hello('mallory')).id;
    const second = s.core.connect(hello('mallory')).id;
    assert.equal(second, `${first}-2`);
    failOnce(s, first);
    failOnce(s, second);
    assert.match(refused(s, first).reason ?? '', /last 2 results/);
    assert.match(refused(s, second).reason ?? '', /last 2 results/);
  });

  void it('an accepted result restores standing; others keep theirs throughout', async () => {
    const s = await setup();
    const mallory = s.core.connect(hello('mallory')).id;
    const honest = s.core.connect(hello('honest')).id;
    failOnce(s, mallory);
    failOnce(s, mallory);
    refused(s, mallory);
    assert.equal(submit(s, honest, lease(s, honest), smallDelta(s.job.subtreeShape)), 'accepted');
    s.clock.advance(10_000);
    assert.equal(submit(s, mallory, lease(s, mallory), smallDelta(s.job.subtreeShape)), 'accepted');
    lease(s, mallory);
  });

  void it('benches a worker whose rejections continue while others are accepted', async () => {
    const s = await setup();
    const mallory = s.core.connect(hello('mallory')).id;
    const honest = s.core.connect(hello('honest')).id;
    for (let i = 0; i < STANDING.bench_after; i++) {
      s.clock.advance(3_600_000);
      failOnce(s, mallory);
      if (i === 0)
        assert.equal(submit(s, honest, lease(s, honest), smallDelta(s.job.subtreeShape)), 'accepted');
    }
    s.clock.advance(30 * 86_400_000);
    const benched = refused(s, mallory);
    assert.match(benched.reason ?? '', /no more units for this worker/);
    lease(s, honest);
  });

  void it('does not bench a lone worker: a stalled job is worse than a slow one', async () => {
    const s = await setup();
    const lone = s.core.connect(hello('lone')).id;
    for (let i = 0; i < STANDING.bench_after + 2; i++) {
      s.clock.advance(3_600_000);
      failOnce(s, lone);
    }
    s.clock.advance(3_600_000);
    lease(s, lone);
  });
});

void describe('quorum', () => {
  const quorumCore = async (): Promise<SeededCore> => {
    seeded = await seededCore({ validation: { quorum: 2 }, standing: { cooldown_after: 100 } });
    return seeded;
  };
  const scaled = (delta: FFFWeights, factor: number): FFFWeights => {
    for (const tensor of Object.values(delta.tensors)) tensor.forEach((v, i, a) => (a[i] = v * factor));
    return delta;
  };

  void it('merges a unit once two workers computed it alike from the same base, crediting both', async () => {
    const s = await quorumCore();
    const alice = s.core.connect(hello('alice')).id;
    const bob = s.core.connect(hello('bob')).id;
    const first = lease(s, alice);
    const shard = s.store.getShard(first.shard)!;
    const computed = smallDelta(s.job.subtreeShape);
    const outcome = s.core.submit({
      unitId: first.unit_id,
      workerId: alice,
      leaseToken: first.lease_token,
      body: encodeFFF(computed),
      metrics: {
        train_loss: 0.5,
        samples: s.job.schedule.unitSamples(shard, { id: first.unit_id }),
        seconds: 1,
      },
    });
    assert.deepEqual(outcome.response, { status: 'accepted', held: true });
    assert.equal(s.store.getShard(first.shard)!.version, 0, 'nothing merged yet');
    assert.notEqual(lease(s, alice).unit_id, first.unit_id, 'never the same worker twice');
    const second = lease(s, bob);
    assert.equal(second.unit_id, first.unit_id);
    assert.equal(second.base_blob.sha256, first.base_blob.sha256);
    assert.equal(second.recipe.seed, first.recipe.seed);
    // Adam's state carried from a worker's earlier units would make the two computations differ.
    assert.deepEqual([first.recipe.fresh_optimizer, second.recipe.fresh_optimizer], [true, true]);
    assert.equal(submit(s, bob, second, scaled(computed, 1.01)), 'accepted');
    assert.equal(s.store.getShard(first.shard)!.version, 1);
    const credit = s.job.schedule.unitSamples(shard, { id: first.unit_id });
    assert.deepEqual([s.store.getWorker(alice)!.credit, s.store.getWorker(bob)!.credit], [credit, credit]);
  });

  void it('rejects a unit whose two results disagree, credits no one, and issues it afresh', async () => {
    const s = await quorumCore();
    const alice = s.core.connect(hello('alice')).id;
    const mallory = s.core.connect(hello('mallory')).id;
    const first = lease(s, alice);
    const computed = smallDelta(s.job.subtreeShape);
    submit(s, alice, first, computed);
    const second = lease(s, mallory);
    assert.equal(submit(s, mallory, second, scaled(computed, 2)), 'rejected');
    assert.equal(s.store.getResult(first.unit_id)?.rule, 'quorum-agrees');
    assert.deepEqual([s.store.getWorker(alice)!.credit, s.store.getWorker(mallory)!.credit], [0, 0]);
    const reissued = s.store.getUnit(`${first.unit_id}-x1`)!;
    assert.deepEqual([reissued.state, reissued.heldBy], ['ready', null]);
  });
});

void describe('partial results', () => {
  void it('accepts what a stopped worker trained, from one minibatch to the whole unit', async () => {
    seeded = await seededCore({ shard_epochs: 4, local_epochs: 4, standing: { cooldown_after: 100 } });
    const s = seeded;
    const alice = s.core.connect(hello('alice')).id;
    const claim = (assign: Assign, samples: number): string =>
      s.core.submit({
        unitId: assign.unit_id,
        workerId: alice,
        leaseToken: assign.lease_token,
        body: encodeFFF(smallDelta(s.job.subtreeShape)),
        metrics: { train_loss: 0.5, samples, seconds: 1 },
      }).response.status;
    const first = lease(s, alice);
    const shard = s.store.getShard(first.shard)!;
    const whole = s.job.schedule.unitSamples(shard, { id: first.unit_id });
    const batch = s.job.schedule.batchOf(shard);
    assert.equal(claim(first, whole + batch + 1), 'rejected', 'more than the unit');
    assert.equal(claim(lease(s, alice), batch - 1), 'rejected', 'less than a minibatch');
    assert.equal(claim(lease(s, alice), 100.5), 'rejected', 'not a count');
    const partial = lease(s, alice);
    const trained = Math.round(whole * 0.75);
    assert.equal(claim(partial, trained), 'accepted');
    assert.equal(s.store.getResult(partial.unit_id)!.samples, trained, 'credited for what it trained');
    const rest = s.store.listUnits().find((u) => u.state === 'ready' && u.id.includes('-p'))!;
    const { from, to } = partial.recipe.schedule;
    assert.ok(Math.abs(rest.window!.from - (from + (to - from) * (trained / whole))) < 1e-12);
    assert.equal(rest.window!.to, to);
  });

  void it('refuses a partial result in quorum mode', async () => {
    seeded = await seededCore({ shard_epochs: 2, local_epochs: 2, batch: 8, validation: { quorum: 2 } });
    const s = seeded;
    const alice = s.core.connect(hello('alice')).id;
    const assign = lease(s, alice);
    const whole = s.job.schedule.unitSamples(s.store.getShard(assign.shard)!, { id: assign.unit_id });
    assert.ok(whole >= 4 * 8, `a unit of ${whole} samples has room for a partial result`);
    const outcome = s.core.submit({
      unitId: assign.unit_id,
      workerId: alice,
      leaseToken: assign.lease_token,
      body: encodeFFF(smallDelta(s.job.subtreeShape)),
      metrics: { train_loss: 0.5, samples: Math.floor(whole / 2), seconds: 1 },
    });
    assert.equal(outcome.code, 'DELTA_REJECTED');
  });
});
