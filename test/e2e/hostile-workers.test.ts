/**
 * Hostile volunteers with valid tokens against a real coordinator: each sends a plausible
 * but harmful result (a zero delta, an inflated sample claim, random weights, the negative
 * of an honest delta, a delta trained on flipped labels) against subtrees that one honest
 * unit each has trained. Every one is rejected and earns nothing, and an honest worker then
 * finishes the job as well as it does undisturbed. (Against subtrees still at chance, the
 * last two moved the loss by under 1% and merged within the tolerance: measured, 2.33 -> 2.35.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import type { Assign } from '../../proto/messages.ts';
import { parseResultResponse } from '../../proto/parse.ts';
import { HEADERS, ROUTES } from '../../proto/routes.ts';
import { selectBackend } from '../../shared/backend.ts';
import { decodeFFF, encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import type { Dataset } from '../../shared/data/dataset.ts';
import { decodeShardData } from '../../shared/data/shard-blob.ts';
import { type FFFWeights, TENSOR_NAMES, cloneWeights } from '../../shared/fff/weights.ts';
import { createRng } from '../../shared/random.ts';
import { trainAssignment } from '../../shared/train-assignment.ts';
import { spawnArbor } from '../helpers/processes.ts';
import { type SmallCoordinator, startSmallCoordinator } from '../helpers/small-job.ts';
import { holdLease } from '../helpers/volunteer.ts';

const TOKEN = 'hostile-token';
const JOB = { shard_epochs: 3, local_epochs: 1, eval_every: 1000, validation: { max_retries: 10 } };
const sockets: WebSocket[] = [];
const coordinators: SmallCoordinator[] = [];

before(async () => {
  await selectBackend('wasm');
});
after(async () => {
  for (const ws of sockets) ws.terminate();
  for (const c of coordinators) await c.close();
});

/** A volunteer holding one unit, with the unit's base subtree and shard data. */
async function leaseAsVolunteer(
  small: SmallCoordinator,
  name: string,
): Promise<{ workerId: string; assign: Assign; base: FFFWeights; data: Dataset }> {
  const { workerId, assign } = await holdLease(small.wsUrl, TOKEN, name, sockets);
  const blob = async (sha256: string) => {
    const response = await fetch(`${small.coordinator.url}${ROUTES.blob.path(sha256)}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    return new Uint8Array(await response.arrayBuffer());
  };
  return {
    workerId,
    assign,
    base: decodeFFF(await blob(assign.base_blob.sha256)),
    data: decodeShardData(await blob(assign.data_blob.sha256)),
  };
}

async function honestDelta(assign: Assign, base: FFFWeights, data: Dataset): Promise<FFFWeights> {
  return (await trainAssignment(assign, { base, data })).delta;
}

function scaled(delta: FFFWeights, factor: number): FFFWeights {
  const out = cloneWeights(delta);
  for (const name of TENSOR_NAMES) out.tensors[name].forEach((v, i, a) => (a[i] = v * factor));
  return out;
}

async function upload(
  small: SmallCoordinator,
  volunteer: { workerId: string; assign: Assign },
  delta: FFFWeights,
  samples: number,
): Promise<{ status: number; rule: string | null | undefined }> {
  const response = await fetch(
    `${small.coordinator.url}${ROUTES.unitResult.path(volunteer.assign.unit_id)}`,
    {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${TOKEN}`,
        'content-type': 'application/octet-stream',
        [HEADERS.worker]: volunteer.workerId,
        [HEADERS.lease]: volunteer.assign.lease_token,
        [HEADERS.metrics]: JSON.stringify({ train_loss: 0.1, samples, seconds: 1 }),
      },
      body: new Uint8Array(encodeFFF(delta)),
    },
  );
  parseResultResponse(Buffer.from(await response.arrayBuffer()));
  return { status: response.status, rule: small.coordinator.store.getResult(volunteer.assign.unit_id)?.rule };
}

/** A first honest unit for every shard, so that the attacks meet trained subtrees, not chance. */
async function warmUp(small: SmallCoordinator): Promise<void> {
  for (const shard of small.coordinator.store.listShards()) {
    const v = await leaseAsVolunteer(small, `warm-up ${shard.id}`);
    const samples = small.coordinator.job.schedule.unitSamples(
      small.coordinator.store.getShard(v.assign.shard)!,
      {
        id: v.assign.unit_id,
      },
    );
    const answer = await upload(small, v, await honestDelta(v.assign, v.base, v.data), samples);
    assert.equal(answer.status, 200, `warm-up of shard ${v.assign.shard}`);
  }
}

/** One honest `arbor worker` process to the end of the job; the final hard test accuracy. */
async function finishHonestly(small: SmallCoordinator): Promise<number> {
  const ws = small.coordinator.url.replace(/^http/, 'ws');
  const worker = spawnArbor([
    'worker',
    '--url',
    ws,
    '--token',
    TOKEN,
    '--name',
    'honest',
    '--backend',
    'wasm',
  ]);
  const final = await small.coordinator.done;
  assert.equal(await worker.exited, 0, worker.stderr.slice(-2000));
  return final.hardTestAcc;
}

void describe('hostile volunteers with valid tokens', { timeout: 300_000 }, () => {
  void it('are all rejected, earn nothing, and leave the job as good as an undisturbed one', async () => {
    const undisturbed = await startSmallCoordinator({ token: TOKEN, settings: JOB });
    coordinators.push(undisturbed);
    await warmUp(undisturbed);
    const baseline = await finishHonestly(undisturbed);

    const small = await startSmallCoordinator({ token: TOKEN, settings: JOB });
    coordinators.push(small);
    await warmUp(small);
    const { store, job } = small.coordinator;
    const attacks: [
      string,
      (
        v: Awaited<ReturnType<typeof leaseAsVolunteer>>,
      ) => [FFFWeights, number] | Promise<[FFFWeights, number]>,
      string[],
    ][] = [
      [
        'zero',
        (v) => [
          scaled(v.base, 0),
          job.schedule.unitSamples(store.getShard(v.assign.shard)!, { id: v.assign.unit_id }),
        ],
        ['shows-work'],
      ],
      [
        'inflated claim',
        async (v) => [await honestDelta(v.assign, v.base, v.data), 2 ** 40],
        ['claim-matches-unit'],
      ],
      [
        'random weights',
        (v) => {
          const rng = createRng(7);
          const noise = scaled(v.base, 0);
          for (const name of TENSOR_NAMES)
            noise.tensors[name].forEach((_, i, a) => (a[i] = (rng() - 0.5) * 2));
          return [noise, job.schedule.unitSamples(store.getShard(v.assign.shard)!, { id: v.assign.unit_id })];
        },
        ['norm-bounded', 'validation-loss'],
      ],
      [
        'negative of an honest delta',
        async (v) => [
          scaled(await honestDelta(v.assign, v.base, v.data), -3),
          job.schedule.unitSamples(store.getShard(v.assign.shard)!, { id: v.assign.unit_id }),
        ],
        ['validation-loss'],
      ],
      [
        'flipped labels',
        async (v) => {
          const flipped = { ...v.data, y: v.data.y.map((y) => (y + 1) % v.data.classes) };
          return [
            await honestDelta(v.assign, v.base, flipped),
            job.schedule.unitSamples(store.getShard(v.assign.shard)!, { id: v.assign.unit_id }),
          ];
        },
        ['validation-loss'],
      ],
    ];
    for (const [kind, attack, rules] of attacks) {
      const volunteer = await leaseAsVolunteer(small, `hostile ${kind}`);
      const [delta, samples] = await attack(volunteer);
      const answer = await upload(small, volunteer, delta, samples);
      assert.equal(answer.status, 422, kind);
      assert.ok(
        rules.includes(answer.rule ?? ''),
        `${kind}: rejected by ${answer.rule}, expected ${rules.join(' or ')}`,
      );
      const worker = store.getWorker(volunteer.workerId);
      assert.equal(worker?.credit, 0, `${kind} earns nothing`);
    }
    assert.equal(store.resultCounts().accepted, store.listShards().length, 'only the warm-up was merged');

    const disturbed = await finishHonestly(small);
    assert.ok(
      Math.abs(disturbed - baseline) <= 0.03,
      `final accuracy ${disturbed.toFixed(4)} against ${baseline.toFixed(4)} undisturbed`,
    );
    const rejectedKinds = store.listWorkers().filter((w) => w.name.startsWith('hostile'));
    assert.equal(rejectedKinds.length, attacks.length);
    assert.ok(rejectedKinds.every((w) => w.credit === 0));
  });
});
