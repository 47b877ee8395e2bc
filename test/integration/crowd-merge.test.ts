/**
 * Eight units of one shard trained together from one base, for real, merged by the real
 * core: under `delayed-nesterov` the shard moves by the mean of their deltas, not their sum,
 * no further than its largest delta, every result is accepted and the validation loss falls;
 * summed whole, the same deltas would move it several times as far. And a unit handed back
 * by one volunteer is cut again for the speed of the slower one who takes it next, and a
 * slow volunteer's last unit is backed up by a fast one, whose copy wins and ends the job; one
 * the crowd's merged schedule has moved past is retired, and the job does not wait for it.
 */
import assert from 'node:assert/strict';
import { afterEach, before, describe, it } from 'node:test';
import type { Assign, Hello } from '../../proto/messages.ts';
import { PROTOCOL_VERSION } from '../../proto/version.ts';
import { trainAssignment } from '../../shared/train-assignment.ts';
import { selectBackend } from '../../shared/backend.ts';
import { decodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import { decodeShardData } from '../../shared/data/shard-blob.ts';
import { hardCrossEntropy } from '../../shared/fff/hard-loss.ts';
import { encodeUnitDelta } from '../../shared/fff/unit-delta.ts';
import { type FFFWeights, TENSOR_NAMES } from '../../shared/fff/weights.ts';
import { type SeededCore, seededCore, smallDelta } from '../helpers/small-job.ts';

let seeded: SeededCore | undefined;
afterEach(() => seeded?.cleanup());
before(async () => {
  await selectBackend('wasm');
});

const hello = (name: string, samplesPerSecond = 1000): Hello => ({
  type: 'hello',
  protocol: PROTOCOL_VERSION,
  name,
  capabilities: { backend: 'wasm', threads: 1, gpu: false, samples_per_s: samplesPerSecond },
});

const norm = (w: FFFWeights): number =>
  Math.sqrt(TENSOR_NAMES.reduce((sum, name) => sum + w.tensors[name].reduce((s, v) => s + v * v, 0), 0));
const minus = (a: FFFWeights, b: FFFWeights): FFFWeights => ({
  shape: a.shape,
  tensors: Object.fromEntries(
    TENSOR_NAMES.map((name) => [name, a.tensors[name].map((v, i) => v - b.tensors[name][i]!)]),
  ) as FFFWeights['tensors'],
});

/** base + k · Σ deltas. */
function plus(base: FFFWeights, k: number, deltas: readonly FFFWeights[]): FFFWeights {
  const tensors = Object.fromEntries(
    TENSOR_NAMES.map((name) => [
      name,
      base.tensors[name].map((v, i) => v + k * deltas.reduce((sum, d) => sum + d.tensors[name][i]!, 0)),
    ]),
  ) as FFFWeights['tensors'];
  return { shape: base.shape, tensors };
}

/** After `seconds` on the injected clock, `worker` submits a small delta for the whole of `assign`. */
function submitWhole(s: SeededCore, worker: string, assign: Assign, seconds: number) {
  s.clock.advance(seconds * 1000);
  const unit = s.store.getUnit(assign.unit_id)!;
  return s.core.submit({
    unitId: assign.unit_id,
    workerId: worker,
    leaseToken: assign.lease_token,
    body: encodeUnitDelta(smallDelta(s.job.subtreeShape)),
    metrics: {
      train_loss: 1,
      samples: s.job.schedule.unitSamples(s.store.getShard(unit.shard)!, unit),
      seconds,
    },
  });
}

/** Sixteen volunteers lease a unit each (eight a shard), train it for real and submit in turn. */
async function crowdRound() {
  const s = (seeded = await seededCore({
    outer: { strategy: 'delayed-nesterov', round: 8 },
    unit_seconds: 0.5,
    shard_epochs: 4,
  }));
  const workers = Array.from({ length: 16 }, (_, i) => s.core.connect(hello(`v${i}`)).id);
  const assigns = workers.map((id) => s.core.assign(id) as Assign);
  const mine = assigns.map((a, i) => ({ a, worker: workers[i]! })).filter(({ a }) => a.shard === 0);
  assert.equal(mine.length, 8, 'eight units of shard 0 in flight together');
  const base = decodeFFF(s.blobs.read(mine[0]!.a.base_blob.sha256));
  assert.ok(
    mine.every(({ a }) => a.base_blob.sha256 === mine[0]!.a.base_blob.sha256),
    'one base',
  );
  const shardData = decodeShardData(s.blobs.read(mine[0]!.a.data_blob.sha256));
  const val = s.job.models.validationSet(s.store.getShard(0)!);
  const deltas: FFFWeights[] = [];
  for (const { a, worker } of mine) {
    const trained = await trainAssignment(a, { base, data: shardData });
    deltas.push(trained.delta);
    const outcome = s.core.submit({
      unitId: a.unit_id,
      workerId: worker,
      leaseToken: a.lease_token,
      body: encodeUnitDelta(trained.delta),
      metrics: { train_loss: 1, samples: trained.samples, seconds: 1 },
    });
    assert.equal(outcome.response.status, 'accepted', outcome.response.reason);
  }
  return {
    base,
    deltas,
    val,
    merged: s.job.models.subtree(s.store.getShard(0)!),
    shares: mine.map(({ a }) => s.store.getUnit(a.unit_id)!.share),
  };
}

void describe('a crowd on one shard', { timeout: 300_000 }, () => {
  void it('delayed-nesterov merges eight concurrent deltas into their mean: no overshoot', async () => {
    const { base, deltas, val, merged, shares } = await crowdRound();
    assert.ok(
      shares.every((share) => share === 1 / 8),
      `shares ${shares.join(', ')}`,
    );
    const mean = plus(base, 1 / 8, deltas);
    const gap = norm(minus(merged, mean));
    assert.ok(gap < 1e-5 * Math.max(1, norm(minus(mean, base))), `merged is the mean (off by ${gap})`);
    const before = hardCrossEntropy(base, val);
    const averaged = hardCrossEntropy(merged, val);
    assert.ok(averaged < before, `validation loss ${before} -> ${averaged}`);
    // No overshoot: the shard moves no further than the largest single delta would move it,
    // where the same deltas summed whole (the sum strategy) would move it several times as far.
    const moved = norm(minus(merged, base));
    const largest = Math.max(...deltas.map(norm));
    assert.ok(moved <= largest, `moved ${moved}, the largest delta ${largest}`);
    assert.ok(norm(minus(plus(base, 1, deltas), base)) > 4 * moved, 'summed, they would go much further');
  });

  void it('a unit handed back is cut again for the slower volunteer who takes it next', async () => {
    const s = (seeded = await seededCore({
      unit_seconds: 1,
      shard_epochs: 8,
      local_epochs: 8,
      in_flight_span: 1,
      batch: 4,
    }));
    const fast = s.core.connect(hello('fast', 5000)).id;
    const unit = s.core.assign(fast) as Assign;
    const whole = s.job.schedule.unitSamples(s.store.getShard(unit.shard)!, s.store.getUnit(unit.unit_id)!);
    s.core.release(fast, {
      type: 'release',
      unit_id: unit.unit_id,
      lease_token: unit.lease_token,
      reason: 'bye',
    });
    const slow = s.core.connect(hello('slow', 20)).id;
    const again = s.core.assign(slow) as Assign;
    assert.equal(again.unit_id, unit.unit_id, 'the same unit');
    const leased = s.store.getUnit(again.unit_id)!;
    const part = s.job.schedule.unitSamples(s.store.getShard(leased.shard)!, leased);
    assert.ok(part < whole / 2, `the slow volunteer trains ${part} of ${whole} samples`);
    const rest = s.store.listUnits().find((u) => u.id.startsWith(`${unit.unit_id}-p`));
    assert.ok(rest !== undefined && rest.state === 'ready', 'the rest waits for someone else');
    assert.equal(rest.window!.from, leased.window!.to, 'the two parts tile the window');
    assert.equal(
      rest.window!.to,
      s.store.getUnit(unit.unit_id)!.window!.to + (rest.window!.to - leased.window!.to),
    );
  });

  void it("backs up a slow volunteer's unit at the end; the first copy merged wins, the other is called off", async () => {
    const s = (seeded = await seededCore({
      shard_epochs: 8,
      local_epochs: 8,
      unit_seconds: 10,
      lease_ms: 60_000,
    }));
    const cancelled: [string, string][] = [];
    s.core.listen({ cancelUnit: (worker, unit) => cancelled.push([worker, unit]) });
    const submitFor = (worker: string, assign: Assign, seconds: number) =>
      submitWhole(s, worker, assign, seconds);
    // Both are measured by a first unit each: the slow one took 20x as long.
    const slow = s.core.connect(hello('slow', 10)).id;
    const fast = s.core.connect(hello('fast', 200)).id;
    const first = s.core.assign(slow) as Assign;
    const second = s.core.assign(fast) as Assign;
    assert.equal(submitFor(fast, second, 1).response.status, 'accepted');
    assert.equal(submitFor(slow, first, 20).response.status, 'accepted');
    // The fast one trains on until a last stretch is left; the slow one takes a unit of it.
    const cutOf = () => s.store.cutProgress().get(first.shard) ?? 0;
    while (cutOf() < 0.85) {
      const next = s.core.assign(fast) as Assign;
      assert.equal(submitFor(fast, next, 0.1).response.status, 'accepted');
    }
    const held = s.core.assign(slow);
    assert.equal(held.type, 'assign', 'the slow volunteer holds a unit');
    let backup: Assign | undefined;
    for (let answer = s.core.assign(fast); answer.type === 'assign'; answer = s.core.assign(fast)) {
      if (answer.unit_id.startsWith(`${held.unit_id}-b`)) {
        backup = answer;
        break;
      }
      assert.equal(submitFor(fast, answer, 0.1).response.status, 'accepted');
    }
    assert.ok(backup !== undefined, `the fast volunteer got a backup of ${held.unit_id}`);
    assert.equal(backup.recipe.schedule.from, held.recipe.schedule.from, 'the same window');
    assert.equal(submitFor(fast, backup, 0.5).response.status, 'accepted');
    assert.deepEqual(cancelled, [[slow, held.unit_id]], 'the slow one is told to stop');
    assert.equal(s.store.getUnit(held.unit_id)?.state, 'rejected');
    assert.equal(s.core.phase, 'done', 'the job ends without waiting for the slow volunteer');
    assert.throws(() => submitFor(slow, held, 1), /the job has ended/, 'its result is not merged');
  });

  void it("retires a slow volunteer's unit once the crowd's merged schedule has moved a span past it", async () => {
    const s = (seeded = await seededCore({ shard_epochs: 8, local_epochs: 8, unit_seconds: 10 }));
    const cancelled: [string, string, string][] = [];
    s.core.listen({ cancelUnit: (worker, unit, reason) => cancelled.push([worker, unit, reason]) });
    const slow = s.core.connect(hello('slow', 10)).id;
    const fast = s.core.connect(hello('fast', 2000)).id;
    const held = s.core.assign(slow) as Assign;
    let merged = 0;
    for (let answer = s.core.assign(fast); answer.type === 'assign'; answer = s.core.assign(fast)) {
      const outcome = submitWhole(s, fast, answer, 0.1);
      assert.equal(outcome.response.status, 'accepted', outcome.response.reason);
      merged++;
    }
    const window = s.store.getUnit(held.unit_id)!.window!;
    assert.ok(merged > 8, `the fast volunteer trained the rest (${merged} units)`);
    assert.deepEqual(
      cancelled,
      [[slow, held.unit_id, "the shard's schedule has moved past this unit"]],
      'the slow one is told to stop',
    );
    assert.equal(s.store.getUnit(held.unit_id)!.state, 'rejected');
    const events = s.store.eventsAfter(0, 10_000).filter((e) => e.kind === 'overtaken');
    assert.equal(events.length, 1);
    assert.ok(
      (events[0]!.data as { front: number }).front >= window.to + s.job.config.in_flight_span - 1e-9,
      'a window merged a whole span past the end of its own',
    );
    assert.ok(
      s.store.listUnits().every((u) => !u.id.startsWith(`${held.unit_id}-`)),
      'neither retried nor backed up',
    );
    assert.equal(s.core.phase, 'done', 'the job ends without waiting for it');
    assert.throws(
      () =>
        s.core.submit({
          unitId: held.unit_id,
          workerId: slow,
          leaseToken: held.lease_token,
          body: encodeUnitDelta(smallDelta(s.job.subtreeShape)),
          metrics: { train_loss: 1, samples: 1, seconds: 1 },
        }),
      /the job has ended|finished meanwhile|lease/i,
      'its result is not merged',
    );
  });
});
