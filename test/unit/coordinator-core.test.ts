/**
 * The coordinator core on a seeded in-memory store with a hand-driven clock: leases,
 * heartbeats, hand-backs, expiry, every acceptance rule, the evaluation schedule and the
 * end of the job. No sockets, no pretraining, no waiting on the wall clock.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { afterEach, describe, it } from 'node:test';
import { ACCEPTANCE_RULES, type Submission } from '../../coordinator/core/acceptance.ts';
import { ProtocolError } from '../../proto/errors.ts';
import type { Assign, Heartbeat, Hello } from '../../proto/messages.ts';
import { PROTOCOL_VERSION } from '../../proto/version.ts';
import { encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import { hardCrossEntropy } from '../../shared/fff/hard-loss.ts';
import { type FFFWeights, zeroWeights } from '../../shared/fff/weights.ts';
import type { Unit } from '../../coordinator/store/store.ts';
import { DEFAULT_RETENTION } from '../../coordinator/core/upkeep.ts';
import { verifyJobBlobs } from '../../coordinator/job/job-blobs.ts';
import { type SeededCore, seededCore, smallDelta } from '../helpers/small-job.ts';

let seeded: SeededCore | undefined;
afterEach(() => seeded?.cleanup());

async function setup(settings: Record<string, unknown> = {}): Promise<SeededCore> {
  seeded = await seededCore(settings);
  return seeded;
}

const hello = (name: string): Hello => ({
  type: 'hello',
  protocol: PROTOCOL_VERSION,
  name,
  capabilities: { backend: 'wasm', threads: 1, gpu: false, samples_per_s: 1000 },
});

function leaseOne(s: SeededCore, name = 'alice'): { workerId: string; assign: Assign } {
  const workerId = s.core.connect(hello(name)).id;
  const assign = s.core.assign(workerId);
  assert.equal(assign.type, 'assign');
  return { workerId, assign: assign as Assign };
}

const beat = (assign: Assign): Heartbeat => ({
  type: 'heartbeat',
  unit_id: assign.unit_id,
  lease_token: assign.lease_token,
  step: 1,
  total_steps: 2,
});

const zeros = (s: SeededCore): FFFWeights => zeroWeights(s.job.subtreeShape);

const small = (s: SeededCore): FFFWeights => smallDelta(s.job.subtreeShape);

const unitSamples = (s: SeededCore, assign: Assign): number =>
  s.job.schedule.unitSamples(s.store.getShard(assign.shard)!, { id: assign.unit_id });

function submission(workerId: string, assign: Assign, body: Uint8Array, s = seeded!): Submission {
  return {
    unitId: assign.unit_id,
    workerId,
    leaseToken: assign.lease_token,
    body,
    metrics: { train_loss: 0.5, samples: unitSamples(s, assign), seconds: 1 },
  };
}

function refusal(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ProtocolError);
    return error;
  }
  assert.fail('expected a ProtocolError');
}

void describe('leases', () => {
  void it("cuts units from the least-advanced shard, each a window of that shard's schedule", async () => {
    // Under `sum` each result is a whole step, so the windows tile the schedule (averaged, they overlap).
    const s = await setup({ shard_epochs: 4, local_epochs: 1, outer: { strategy: 'sum' } });
    const workers = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((name) => s.core.connect(hello(name)).id);
    const assigns = workers.map((id) => s.core.assign(id) as Assign);
    assert.deepEqual(
      assigns.map((a) => a.shard),
      [0, 1, 0, 1, 0, 1, 0, 1],
      'the shard with the least budget handed out first',
    );
    const windows = assigns
      .filter((a) => a.shard === 0)
      .map((a) => [a.recipe.schedule.from, a.recipe.schedule.to]);
    assert.deepEqual(windows, [
      [0, 0.25],
      [0.25, 0.5],
      [0.5, 0.75],
      [0.75, 1],
    ]);
    assert.ok(assigns.every((a) => a.recipe.schedule.epochs === 4 && a.recipe.local_epochs === 1));
    const late = s.core.connect(hello('late')).id;
    assert.equal(s.core.assign(late).type, 'no_work', 'the whole budget is out');
    s.clock.advance(s.job.config.lease_ms + 1);
    s.core.expire();
    const again = s.core.assign(late) as Assign;
    assert.equal(again.unit_id, assigns[0]!.unit_id, 'an expired unit goes out again, window and all');
    assert.deepEqual(again.recipe.schedule, assigns[0]!.recipe.schedule);
  });

  void it('leases the oldest ready unit until the clock passes its deadline', async () => {
    const s = await setup();
    const { workerId, assign } = leaseOne(s);
    assert.equal(assign.deadline_ms, s.clock.now() + s.job.config.lease_ms);
    assert.equal(s.store.getUnit(assign.unit_id)?.workerId, workerId);

    s.clock.advance(s.job.config.lease_ms);
    assert.equal(s.core.expire(), 0, 'a lease is held up to and including its deadline');
    s.clock.advance(1);
    assert.equal(s.core.expire(), 1);
    const unit = s.store.getUnit(assign.unit_id);
    assert.equal(unit?.state, 'ready');
    assert.equal(unit.attempts, 1);
    const heartbeat = beat(assign);
    assert.equal(s.core.heartbeat(workerId, heartbeat), false, 'the lost lease cannot be renewed');
  });

  void it('a heartbeat moves the deadline; only the holder can renew or hand back', async () => {
    const s = await setup();
    const { workerId, assign } = leaseOne(s);
    const other = s.core.connect(hello('mallory')).id;
    const heartbeat = beat(assign);
    s.clock.advance(s.job.config.lease_ms - 1);
    assert.equal(s.core.heartbeat(other, heartbeat), false);
    assert.equal(s.core.heartbeat(workerId, { ...heartbeat, lease_token: 'forged' }), false);
    assert.equal(s.core.heartbeat(workerId, heartbeat), true);
    assert.equal(s.store.getUnit(assign.unit_id)?.deadlineMs, s.clock.now() + s.job.config.lease_ms);
    s.clock.advance(s.job.config.lease_ms - 1);
    assert.equal(s.core.expire(), 0, 'renewed');

    const release = {
      type: 'release',
      unit_id: assign.unit_id,
      lease_token: assign.lease_token,
      reason: 'bye',
    } as const;
    assert.equal(s.core.release(other, release), false);
    assert.equal(s.core.release(workerId, release), true);
    assert.equal(s.store.getUnit(assign.unit_id)?.state, 'ready');
  });

  void it('says no_work while routing has not happened and done once the job is over', async () => {
    const s = await setup({ shard_epochs: 1 });
    const leased = [leaseOne(s, 'bob-0'), leaseOne(s, 'bob-1')];
    const id = s.core.connect(hello('bob')).id;
    assert.deepEqual(s.core.assign(id), { type: 'no_work', retry_after_ms: s.job.config.retry_after_ms });
    for (const { workerId, assign } of leased)
      s.core.submit(submission(workerId, assign, encodeFFF(small(s))));
    assert.equal(s.core.phase, 'done');
    assert.deepEqual(s.core.assign(id), {
      type: 'no_work',
      retry_after_ms: s.job.config.retry_after_ms,
      done: true,
    });
  });

  void it('gives a second lease at once only to a worker measured fast by its last unit', async () => {
    const s = await setup({ max_leases_per_worker: 2, shard_epochs: 4, local_epochs: 1 });
    const { workerId, assign } = leaseOne(s, 'quick');
    assert.equal(s.core.assign(workerId).type, 'no_work', 'no history: one at a time');
    s.clock.advance(s.job.config.lease_ms / 2);
    s.core.submit(submission(workerId, assign, encodeFFF(small(s))));
    assert.equal(s.core.assign(workerId).type, 'assign');
    assert.equal(s.core.assign(workerId).type, 'assign', 'back within half a lease: two at once');
    assert.equal(s.core.assign(workerId).type, 'no_work', 'never more than max_leases_per_worker');

    const slow = leaseOne(s, 'slow');
    s.clock.advance(s.job.config.lease_ms / 2 + 1);
    s.core.heartbeat(slow.workerId, beat(slow.assign));
    s.core.submit(submission(slow.workerId, slow.assign, encodeFFF(small(s))));
    assert.equal(s.core.assign(slow.workerId).type, 'assign');
    assert.equal(s.core.assign(slow.workerId).type, 'no_work', 'slower than half a lease: one at a time');
  });

  void it('ends a lease at max_lease_ms however many heartbeats it gets', async () => {
    const s = await setup({ lease_ms: 1_000, max_lease_ms: 2_500 });
    const { workerId, assign } = leaseOne(s);
    const heartbeat = beat(assign);
    const started = s.clock.now();
    for (let t = 900; t < 2_500; t += 900) {
      s.clock.advance(900);
      assert.equal(s.core.heartbeat(workerId, heartbeat), true, `renewed at +${t} ms`);
    }
    assert.equal(s.store.getUnit(assign.unit_id)?.deadlineMs, started + 2_500, 'never past the lifetime');
    s.clock.advance(900);
    assert.equal(s.core.heartbeat(workerId, heartbeat), false, 'the lifetime is over');
    s.clock.advance(1);
    assert.equal(s.core.expire(), 1);
  });

  void it('leases one unit at a time to a worker unless the job allows more', async () => {
    const s = await setup();
    const { workerId } = leaseOne(s);
    assert.deepEqual(s.core.assign(workerId), {
      type: 'no_work',
      retry_after_ms: s.job.config.retry_after_ms,
    });
    assert.equal(s.store.leasesHeldBy(workerId), 1);
  });

  void it('remembers when each worker was last heard from, by the clock', async () => {
    const s = await setup();
    const { workerId, assign } = leaseOne(s);
    const connected = s.clock.now();
    s.clock.advance(1234);
    s.core.heartbeat(workerId, beat(assign));
    assert.equal(s.core.presence.get(workerId)?.connectedMs, connected);
    assert.equal(s.core.presence.get(workerId)?.lastSeenMs, connected + 1234);
    s.core.disconnect(workerId);
    assert.equal(s.core.presence.size, 0);
    assert.equal(s.store.getWorker(workerId)?.lastSeenMs, connected + 1234, 'kept after disconnecting');
  });
});

void describe('acceptance rules', () => {
  void it('run in a fixed order, each with one error code', () => {
    assert.deepEqual(
      ACCEPTANCE_RULES.map((r) => `${r.stage}:${r.name}:${r.code}`),
      [
        'lease:unit-exists:UNKNOWN_UNIT',
        'lease:job-running:LEASE_LOST',
        'lease:leased-to-sender:LEASE_LOST',
        'lease:lease-held:LEASE_LOST',
        'delta:decodes:DELTA_INVALID',
        'delta:shape-matches:DELTA_INVALID',
        'delta:values-finite:DELTA_INVALID',
        'delta:norm-bounded:DELTA_REJECTED',
        'delta:path-finite:DELTA_INVALID',
        'delta:path-norm-bounded:DELTA_REJECTED',
        'delta:shows-work:DELTA_REJECTED',
        'delta:claim-matches-unit:DELTA_REJECTED',
        'delta:own-work:DELTA_REJECTED',
        'delta:quorum-agrees:DELTA_REJECTED',
        'delta:not-too-stale:DELTA_REJECTED',
        'delta:validation-loss:DELTA_REJECTED',
      ],
    );
  });

  void it('refuse uploads from anyone but the lease holder, without recording them', async () => {
    const s = await setup();
    const { workerId, assign } = leaseOne(s);
    const body = encodeFFF(small(s));
    const cases: [Submission, string][] = [
      [{ ...submission(workerId, assign, body), unitId: 'r9999-s0000' }, 'UNKNOWN_UNIT'],
      [{ ...submission(workerId, assign, body), workerId: 'w-someone-else' }, 'LEASE_LOST'],
      [{ ...submission(workerId, assign, body), leaseToken: 'forged' }, 'LEASE_LOST'],
    ];
    for (const [sub, code] of cases) assert.equal(refusal(() => s.core.submit(sub)).code, code);
    s.clock.advance(s.job.config.lease_ms + 1);
    assert.equal(
      refusal(() => s.core.submit(submission(workerId, assign, body))).code,
      'LEASE_LOST',
      'past the deadline',
    );
    assert.equal(s.store.getResult(assign.unit_id), undefined);
  });

  void it('shows-work asks nothing of a window that rounds to no whole step (a tail after a re-route)', async () => {
    const s = await setup();
    const showsWork = ACCEPTANCE_RULES.find((r) => r.name === 'shows-work')!;
    const shard = s.store.listShards()[0]!;
    const stepsPerEpoch = Math.ceil(shard.samples / s.job.schedule.batchOf(shard));
    const unitOf = (steps: number): Unit => ({
      ...s.store.listUnits()[0]!,
      id: 'tail',
      shard: shard.id,
      window: { from: 0.9, to: 1, epochs: steps / stepsPerEpoch },
    });
    const judge = (steps: number) =>
      showsWork.check(
        {
          submission: {
            unitId: 'tail',
            workerId: 'w',
            leaseToken: 't',
            body: new Uint8Array(),
            metrics: { train_loss: 0, samples: 0, seconds: 1 },
          },
          now: 0,
          unit: unitOf(steps),
          shard,
          delta: zeros(s),
        },
        s.job,
      );
    s.core.assign(s.core.connect(hello('alice')).id);
    assert.equal(s.job.schedule.unitSamples(shard, unitOf(0.3)), 0, 'the window rounds to no step');
    assert.equal(judge(0.3), undefined, 'nothing trained, nothing to show');
    assert.match(judge(2) ?? '', /shows no training/, 'two steps of nothing are refused');
  });

  const deltaCases: [string, string, (s: SeededCore) => Uint8Array][] = [
    ['shows-work', 'DELTA_REJECTED', (s) => encodeFFF(zeros(s))],
    [
      'shows-work',
      'DELTA_REJECTED',
      (s) => {
        // A zero delta with a few bytes flipped: a norm of training size, but no training.
        const w = zeros(s);
        for (let i = 0; i < 20; i++) w.tensors['leaves.w1'][i * 97] = 0.5;
        return encodeFFF(w);
      },
    ],
    ['decodes', 'DELTA_INVALID', () => new Uint8Array([1, 2, 3])],
    [
      'shape-matches',
      'DELTA_INVALID',
      (s) => encodeFFF(zeroWeights({ ...s.job.subtreeShape, leafWidth: 3 })),
    ],
    [
      'values-finite',
      'DELTA_INVALID',
      (s) => {
        const w = zeros(s);
        w.tensors['leaves.b2'][0] = NaN;
        return encodeFFF(w);
      },
    ],
    [
      'norm-bounded',
      'DELTA_REJECTED',
      (s) => {
        const w = zeros(s);
        w.tensors['leaves.b2'].fill(1e6);
        return encodeFFF(w);
      },
    ],
    [
      'validation-loss',
      'DELTA_REJECTED',
      (s) => {
        const w = zeros(s);
        w.tensors['leaves.w1'].fill(1e-6);
        // Every leaf now votes for one wrong class with a huge margin.
        for (let i = 0; i < w.tensors['leaves.b2'].length; i += s.job.subtreeShape.outputWidth)
          w.tensors['leaves.b2'][i] = 100;
        return encodeFFF(w);
      },
    ],
  ];
  for (const [rule, code, body] of deltaCases)
    void it(`record a delta failing ${rule} as ${code} and reissue the unit`, async () => {
      const s = await setup();
      const { workerId, assign } = leaseOne(s);
      const outcome = s.core.submit(submission(workerId, assign, body(s)));
      assert.equal(outcome.code, code);
      assert.equal(outcome.response.status, 'rejected');
      const result = s.store.getResult(assign.unit_id);
      assert.equal(result?.rule, rule);
      assert.equal(s.store.getWorker(workerId)?.rejections, 1);
      assert.ok(s.store.getUnit(`${assign.unit_id}-x1`), 'a replacement unit');
      assert.deepEqual(s.store.rejectionsByRule(), [{ rule, n: 1 }]);
    });

  void it('reject a delta that is too stale', async () => {
    const s = await setup({ outer: { max_staleness: 0 } });
    const a = leaseOne(s, 'a');
    const b = leaseOne(s, 'b');
    const c = leaseOne(s, 'c');
    // Two units of the same shard: whichever merges second is one version behind.
    const [first, second] = a.assign.shard === c.assign.shard ? [a, c] : [b, c];
    assert.equal(
      s.core.submit(submission(first.workerId, first.assign, encodeFFF(small(s)))).code,
      undefined,
    );
    const outcome = s.core.submit(submission(second.workerId, second.assign, encodeFFF(small(s))));
    assert.equal(outcome.code, 'DELTA_REJECTED');
    assert.equal(s.store.getResult(second.assign.unit_id)?.rule, 'not-too-stale');
  });

  void it('accept a good delta once: a replay gets the same answer and merges nothing', async () => {
    const s = await setup();
    const { workerId, assign } = leaseOne(s);
    const sub = submission(workerId, assign, encodeFFF(small(s)));
    const first = s.core.submit(sub);
    assert.deepEqual(first.response, { status: 'accepted', version: 1 });
    assert.deepEqual(s.core.submit(sub).response, first.response);
    assert.equal(s.store.getShard(assign.shard)?.version, 1);
    assert.equal(
      s.store.getWorker(workerId)?.credit,
      unitSamples(s, assign),
      'credited what the unit trains',
    );
    assert.equal(refusal(() => s.core.submit({ ...sub, workerId: 'w-other' })).code, 'LEASE_LOST');
  });
});

void describe('free riders and stalls', () => {
  void it('reject a claim of more samples than the unit trains, crediting nothing', async () => {
    const s = await setup();
    const { workerId, assign } = leaseOne(s);
    const sub = submission(workerId, assign, encodeFFF(small(s)));
    const outcome = s.core.submit({ ...sub, metrics: { ...sub.metrics, samples: 2 ** 53 - 1 } });
    assert.equal(outcome.code, 'DELTA_REJECTED');
    assert.equal(s.store.getResult(assign.unit_id)?.rule, 'claim-matches-unit');
    assert.equal(s.store.getWorker(workerId)?.credit, 0);
    assert.equal(s.store.getShard(assign.shard)?.trainedSamples, 0);
  });

  void it("measure the validation tolerance from the best of the unit's phase, so it cannot ratchet up", async () => {
    const s = await setup();
    const { workerId, assign } = leaseOne(s);
    const shard = s.store.getShard(assign.shard)!;
    const phase = s.job.schedule.validationPhase({ id: assign.unit_id });
    // As if earlier deltas had each raised the measure within the tolerance of the one before.
    const current = s.job.models.currentMeasure(shard, phase);
    s.store.upsertShard({ ...shard, bestValLoss: current / 1.5, bestPhase: phase.name });
    const outcome = s.core.submit(submission(workerId, assign, encodeFFF(small(s))));
    assert.equal(outcome.code, 'DELTA_REJECTED');
    assert.match(outcome.response.reason ?? '', /worse than the shard's best/);
  });

  void it("keeps the best measure of the phase as results merge, and the served model's loss", async () => {
    const s = await setup();
    const { workerId, assign } = leaseOne(s);
    const phase = s.job.schedule.validationPhase({ id: assign.unit_id });
    assert.equal(phase.name, 'soft', 'the first unit ends in the soft phase');
    s.core.submit(submission(workerId, assign, encodeFFF(small(s))));
    const after = s.store.getShard(assign.shard)!;
    assert.equal(after.bestPhase, 'soft');
    assert.equal(after.bestValLoss, s.job.models.currentMeasure(after, phase));
    assert.equal(
      after.valLoss,
      hardCrossEntropy(s.job.models.subtree(after), s.job.models.validationSet(after)),
    );
  });

  void it('ends the job when rejections retire its last open units, instead of stalling', async () => {
    const s = await setup({
      validation: { max_retries: 0 },
      standing: { cooldown_after: 100 },
      shard_epochs: 1,
      local_epochs: 1,
    });
    const finished: number[] = [];
    s.core.listen({ finished: (row) => finished.push(row.accepted) });
    const id = s.core.connect(hello('mallory')).id;
    for (let answer = s.core.assign(id); answer.type === 'assign'; answer = s.core.assign(id))
      s.core.submit(submission(id, answer, new Uint8Array([1])));
    assert.equal(s.core.phase, 'done');
    assert.deepEqual(finished, [0]);
    assert.deepEqual(s.core.assign(id), {
      type: 'no_work',
      retry_after_ms: s.job.config.retry_after_ms,
      done: true,
    });
  });

  void it('retires a unit after rejections from max_retries + 1 distinct volunteers', async () => {
    // Standing would make them wait after their third rejection; this is about the unit.
    const s = await setup({ validation: { max_retries: 2 }, standing: { cooldown_after: 100 } });
    const ids: string[] = [];
    const workers: string[] = [];
    for (const name of ['alice', 'bob', 'carol']) {
      const id = s.core.connect(hello(name)).id;
      workers.push(id);
      const assign = s.core.assign(id) as Assign;
      ids.push(assign.unit_id);
      assert.equal(s.core.submit(submission(id, assign, new Uint8Array([1]))).code, 'DELTA_INVALID');
    }
    assert.deepEqual(ids, ['s0000-c000000', 's0000-c000000-x1', 's0000-c000000-x2']);
    assert.deepEqual(s.store.getUnit('s0000-c000000-x2')?.rejectedBy, workers.slice(0, 2));
    assert.equal(s.store.getUnit('s0000-c000000-x3'), undefined, 'retired, not reissued');
    assert.ok(s.store.eventsAfter(0, 1000).some((e) => e.kind === 'retired'));
  });

  void it('does not let one volunteer retire a unit: its own rejections reissue it, to others first', async () => {
    const s = await setup({ validation: { max_retries: 2 }, standing: { cooldown_after: 100 } });
    const mallory = s.core.connect(hello('mallory')).id;
    const bob = s.core.connect(hello('bob')).id;
    const first = s.core.assign(mallory) as Assign;
    const other = s.core.assign(bob) as Assign;
    s.core.submit(submission(mallory, first, new Uint8Array([1])));
    s.core.submit(submission(bob, other, new Uint8Array([1])));
    assert.equal(
      (s.core.assign(mallory) as Assign).unit_id,
      `${other.unit_id}-x1`,
      "mallory gets bob's retry, not its own",
    );
    const ids: string[] = [];
    for (let answer = s.core.assign(bob); answer.type === 'assign'; answer = s.core.assign(bob)) {
      if (!answer.unit_id.startsWith(first.unit_id)) break;
      ids.push(answer.unit_id);
      s.core.submit(submission(bob, answer, new Uint8Array([1])));
      if (ids.length > 10) break;
    }
    // mallory and bob are two volunteers: max_retries 2 needs a third, or 3 × 2 reissues.
    assert.deepEqual(
      ids,
      [1, 2, 3, 4, 5, 6].map((n) => `${first.unit_id}-x${n}`),
    );
    assert.equal(s.store.getUnit(`${first.unit_id}-x7`), undefined, 'ids stay bounded');
  });
});

void describe('evaluation and the end of the job', () => {
  void it('evaluates every eval_every accepted results, stamped by the clock, and ends after the last unit', async () => {
    const s = await setup({ eval_every: 2, shard_epochs: 2 });
    // One lease at a time: each result is in before the next unit is asked for.
    const finished: number[] = [];
    s.core.listen({ finished: (row) => finished.push(row.accepted) });
    const id = s.core.connect(hello('carol')).id;
    const total = 4; // two shards, two passes each, one pass a unit
    for (let i = 1; i <= total; i++) {
      s.clock.advance(1000);
      const assign = s.core.assign(id) as Assign;
      assert.equal(s.core.submit(submission(id, assign, encodeFFF(small(s)))).code, undefined);
      const evals = s.store.listEvals();
      if (i < total) {
        assert.equal(evals.length, Math.floor(i / 2), `evaluations after ${i} results`);
        if (i % 2 === 0) assert.equal(evals.at(-1)?.atMs, s.clock.now());
      }
    }
    const final = await s.core.done;
    assert.equal(final.accepted, total);
    assert.equal(final.atMs, s.clock.now());
    assert.deepEqual(finished, [total]);
    assert.equal(s.core.phase, 'done');
    assert.ok(existsSync(s.job.finalModelPath), 'the final model is written');
  });
});

void describe("the owner's goal ends the job early", () => {
  void it('at the first evaluation that reaches the accuracy asked for; results still out are refused', async () => {
    const s = await setup({ eval_every: 1, shard_epochs: 4, until: { accuracy: 0.01 } });
    const [alice, bob] = ['alice', 'bob'].map((name) => s.core.connect(hello(name)).id) as [string, string];
    const first = s.core.assign(alice) as Assign;
    const second = s.core.assign(bob) as Assign;
    s.clock.advance(1000);
    assert.equal(s.core.submit(submission(alice, first, encodeFFF(small(s)))).code, undefined);
    const final = await s.core.done;
    assert.equal(s.core.phase, 'done');
    assert.equal(final.accepted, 1);
    assert.ok(existsSync(s.job.finalModelPath), 'the final model is written');
    const done = s.store
      .eventsAfter(0, 1000)
      .find((e) => e.kind === 'phase' && (e.data as { phase: string }).phase === 'done');
    assert.match((done!.data as { reason: string }).reason, /accuracy .* reached the goal 0.01/);
    const late = refusal(() => s.core.submit(submission(bob, second, encodeFFF(small(s)))));
    assert.equal(late.code, 'LEASE_LOST');
    assert.match(late.message, /the job has ended/);
  });

  void it('once the time given has passed, at the next upkeep even if no result comes', async () => {
    // The seeded job began at time 0 and the clock reads 1,000 s: 30 s are left.
    const s = await setup({ until: { seconds: 1_030 } });
    assert.equal(s.store.getJob()!.createdMs + 1_000_000, s.clock.now());
    const id = s.core.connect(hello('carol')).id;
    s.core.assign(id);
    s.clock.advance(29_000);
    s.core.upkeep();
    assert.equal(s.core.phase, 'training');
    s.clock.advance(1_000);
    s.core.upkeep();
    assert.equal(s.core.phase, 'done');
  });
});

void describe('upkeep', () => {
  void it('deletes the blobs no row needs once unused past the grace, and nothing the job still needs', async () => {
    const grace = 600_000;
    const s = await seededCore(
      {},
      { retention: { ...DEFAULT_RETENTION, everyMs: 1_000, blobGraceMs: grace } },
    );
    seeded = s;
    const { workerId, assign } = leaseOne(s);
    const served = assign.base_blob.sha256;
    const outcome = s.core.submit(submission(workerId, assign, encodeFFF(small(s))));
    assert.equal(outcome.response.status, 'accepted');
    const deltaBlob = s.store.getResult(assign.unit_id)!.deltaBlob!;
    const current = s.store.getShard(assign.shard)!.weightsBlob;
    assert.notEqual(current, served, 'the merge superseded the weights the unit was served');
    const stored = s.blobs.stats();

    s.clock.advance(grace - 2_000);
    s.core.upkeep();
    assert.ok(s.blobs.has(served) && s.blobs.has(deltaBlob), 'nothing goes before the grace has passed');

    s.clock.advance(4_000);
    s.core.upkeep();
    assert.equal(s.blobs.has(served), false, 'superseded weights are collected');
    assert.equal(s.blobs.has(deltaBlob), false, 'so is the merged delta');
    assert.ok(s.blobs.stats().bytes < stored.bytes);
    for (const name of s.store.blobsInUse()) assert.ok(s.blobs.has(name), `${name} is still needed and kept`);
    assert.doesNotThrow(() => verifyJobBlobs(s.store, s.blobs), 'a restart finds every blob it checks');
    // The job goes on: the next unit's blobs are all there.
    const next = leaseOne(s, 'bob');
    assert.ok(s.blobs.has(next.assign.base_blob.sha256) && s.blobs.has(next.assign.data_blob.sha256));
  });

  void it('bounds the event log and forgets idle strangers, on its own schedule', async () => {
    const s = await seededCore(
      {},
      { retention: { maxEvents: 5, idleWorkerRowMs: 60_000, everyMs: 10_000, blobGraceMs: 600_000 } },
    );
    seeded = s;
    for (let i = 0; i < 20; i++) s.core.disconnect(s.core.connect(hello(`passer-${i}`)).id);
    const online = s.core.connect(hello('online')).id;
    s.clock.advance(60_001);
    s.core.upkeep();
    assert.deepEqual(
      s.store.listWorkers().map((w) => w.id),
      [online],
    );
    assert.equal(s.store.eventsAfter(0, 1000).length, 5);
    for (let i = 0; i < 20; i++) s.store.appendEvent('noise', {}, s.clock.now());
    s.core.upkeep();
    assert.equal(s.store.eventsAfter(0, 1000).length, 25, 'not again before everyMs');
    s.clock.advance(10_000);
    s.core.upkeep();
    assert.equal(s.store.eventsAfter(0, 1000).length, 5);
  });
});
