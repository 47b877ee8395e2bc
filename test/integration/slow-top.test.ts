/**
 * The slow top end to end on the real core and a real SQLite file: workers' path deltas
 * move the top, the coordinator re-routes, every training sample stays in exactly one shard
 * (held-out samples stay held out), and a coordinator that dies in the middle of a re-route
 * comes back with nothing lost. Training is real (tiny data); time is a hand-driven clock.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { CoordinatorCore } from '../../coordinator/core/coordinator-core.ts';
import { parseJobConfig } from '../../coordinator/job/config.ts';
import { TrainingJob } from '../../coordinator/job/training-job.ts';
import { BlobStore } from '../../coordinator/store/blob-store.ts';
import { SqliteStore } from '../../coordinator/store/sqlite-store.ts';
import type { Store } from '../../coordinator/store/store.ts';
import { heldOutSamples } from '../../coordinator/top/route-held-out.ts';
import type { Assign, Hello } from '../../proto/messages.ts';
import { PROTOCOL_VERSION } from '../../proto/version.ts';
import { trainAssignment } from '../../shared/train-assignment.ts';
import { selectBackend } from '../../shared/backend.ts';
import { decodeFFF, encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import { zeroWeights } from '../../shared/fff/weights.ts';
import { ManualClock } from '../../shared/clock.ts';
import type { Dataset } from '../../shared/data/dataset.ts';
import { decodeShardData } from '../../shared/data/shard-blob.ts';
import { decodeUnitDelta, encodeUnitDelta } from '../../shared/fff/unit-delta.ts';
import { SMALL_JOB, seedPretrained, tinyData } from '../helpers/small-job.ts';
import { routingImbalance } from '../../coordinator/top/top-guard.ts';
import { concatDatasets } from '../../shared/data/dataset.ts';

const silent = pino({ level: 'silent' });
const data = tinyData();
const SETTINGS = {
  ...SMALL_JOB,
  data: 'tiny',
  depth: 4,
  frozen: 2,
  shard_epochs: 6,
  local_epochs: 1,
  unit_seconds: 0.5,
  top: { mode: 'slow', lr: [8], reroute_every: 3, tolerance: 100 },
};

const hello = (name: string): Hello => ({
  type: 'hello',
  protocol: PROTOCOL_VERSION,
  name,
  capabilities: { backend: 'wasm', threads: 1, gpu: false, samples_per_s: 400 },
});

interface Opened {
  store: SqliteStore;
  blobs: BlobStore;
  job: TrainingJob;
  core: CoordinatorCore;
  clock: ManualClock;
}

async function open(dir: string, settings: Record<string, unknown>, store?: Store): Promise<Opened> {
  const config = parseJobConfig(settings);
  mkdirSync(dir, { recursive: true });
  const sqlite = new SqliteStore(join(dir, 'arbor.db'));
  const blobs = new BlobStore(join(dir, 'blobs'));
  const clock = new ManualClock(1_000_000);
  if (sqlite.getJob() === undefined) seedPretrained(sqlite, blobs, config, data);
  const ctx = { store: store ?? sqlite, blobs, config, data, log: silent, clock };
  const job = new TrainingJob({ ...ctx, finalModelPath: join(dir, 'final.safetensors') });
  const core = new CoordinatorCore({ job, store: store ?? sqlite, blobs, clock, log: silent });
  await core.prepare();
  return { store: sqlite, blobs, job, core, clock };
}

/** Trains a leased unit as a worker would, path included. */
async function result(o: Opened, assign: Assign): Promise<{ body: Uint8Array; samples: number }> {
  const base = decodeFFF(o.blobs.read(assign.base_blob.sha256));
  const data = decodeShardData(o.blobs.read(assign.data_blob.sha256));
  assert.ok(assign.top, 'a slow-top unit tells its worker the top');
  const top = {
    blob: o.blobs.read(assign.top.blob.sha256),
    siblings: o.blobs.read(assign.top.siblings_blob.sha256),
  };
  const trained = await trainAssignment(assign, { base, data, top });
  return { body: encodeUnitDelta(trained.delta, trained.pathDelta), samples: trained.samples };
}

function submit(o: Opened, worker: string, assign: Assign, trained: { body: Uint8Array; samples: number }) {
  return o.core.submit({
    unitId: assign.unit_id,
    workerId: worker,
    leaseToken: assign.lease_token,
    body: trained.body,
    metrics: { train_loss: 1, samples: trained.samples, seconds: 1 },
  });
}

async function runUnits(o: Opened, worker: string, count: number): Promise<number> {
  let done = 0;
  for (; done < count; done++) {
    const assign = o.core.assign(worker);
    if (assign.type !== 'assign') break;
    const outcome = submit(o, worker, assign, await result(o, assign));
    assert.equal(outcome.response.status, 'accepted', outcome.response.reason);
    await o.job.settled();
    o.clock.advance(1000);
  }
  return done;
}

const rowKey = (ds: Dataset, i: number): string =>
  `${ds.y[i]}:${Array.from(ds.x.subarray(i * ds.inputWidth, (i + 1) * ds.inputWidth)).join(',')}`;

/** Every training sample is in exactly one shard's data or validation slice, held out as before. */
function assertEachSampleOnce(o: Opened): void {
  const held = heldOutSamples(data.train.n, 0.1, 1);
  const where = new Map<string, string[]>();
  for (const shard of o.store.listShards()) {
    for (const [kind, blob] of [
      ['train', shard.dataBlob],
      ['val', shard.valBlob!],
    ] as const) {
      const ds = decodeShardData(o.blobs.read(blob));
      for (let i = 0; i < ds.n; i++) where.set(rowKey(ds, i), [...(where.get(rowKey(ds, i)) ?? []), kind]);
    }
  }
  assert.equal(where.size, data.train.n, 'every sample is somewhere, none twice over');
  for (let i = 0; i < data.train.n; i++) {
    const places = where.get(rowKey(data.train, i));
    assert.deepEqual(places, [held[i] ? 'val' : 'train'], `sample ${i}`);
  }
}

void describe('slow top', () => {
  let dir: string;
  before(async () => {
    await selectBackend('cpu');
    dir = mkdtempSync(join(tmpdir(), 'arbor-slow-top-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  void it('moves the top with path deltas and re-routes, each sample in exactly one shard', async () => {
    const o = await open(join(dir, 'a'), SETTINGS);
    assertEachSampleOnce(o);
    await runUnits(o, o.core.connect(hello('ann')).id, 12);
    const top = o.store.getTop()!;
    assert.ok(top.version >= 3, `top updates merged: ${top.version}`);
    assert.ok(top.routingVersion >= 1, 're-routed at least once');
    const reroutes = o.store
      .eventsAfter(0, 1000)
      .filter((e) => e.kind === 'rerouted')
      .map((e) => e.data as { migrated: number });
    assert.ok(
      reroutes.some((r) => r.migrated > 0),
      `samples migrated: ${JSON.stringify(reroutes)}`,
    );
    assertEachSampleOnce(o);
    o.store.close();
  });

  void it("drops a path delta that would make the served model worse, and merges the subtree's part", async () => {
    const o = await open(join(dir, 'c'), { ...SETTINGS, top: { ...SETTINGS.top, tolerance: 0.05 } });
    const worker = o.core.connect(hello('eve')).id;
    await runUnits(o, worker, 4);
    const assign = o.core.assign(worker) as Assign;
    const honest = await result(o, assign);
    const decoded = decodeUnitDelta(honest.body, 'honest', 2);
    // Every other shard's subtree answers class 0 whatever it is shown.
    const bad = zeroWeights(o.job.subtreeShape);
    for (let leaf = 0; leaf < 2 ** bad.shape.depth; leaf++) bad.tensors['leaves.b2'][leaf * 4] = 10;
    for (const shard of o.store.listShards())
      if (shard.id !== assign.shard)
        o.store.upsertShard({ ...shard, weightsBlob: o.blobs.put(encodeFFF(bad)) });
    // Within the norm bound, but at the root it sends every sample away from the unit's shard.
    const bias = Float32Array.of(assign.shard < 2 ? 60 : -60, 0);
    const body = encodeUnitDelta(decoded.delta, {
      weight: new Float32Array(2 * data.train.inputWidth),
      bias,
    });
    const before = o.store.getTop()!;
    const outcome = submit(o, worker, assign, { body, samples: honest.samples });
    assert.equal(outcome.response.status, 'accepted', 'the subtree part still counts');
    assert.deepEqual(o.store.getTop(), before, 'the top did not move');
    const accepted = o.store.eventsAfter(0, 1000).findLast((e) => e.kind === 'accepted')!.data as {
      top_dropped?: string;
    };
    assert.match(accepted.top_dropped ?? '', /unbalances the routing|raises the served validation loss/);
    o.store.close();
  });

  void it('cannot be steered by many small path deltas, each within the old per-step tolerance', async () => {
    const o = await open(join(dir, 'steer'), { ...SETTINGS, top: { ...SETTINGS.top, tolerance: 0.05 } });
    const worker = o.core.connect(hello('mallory')).id;
    await runUnits(o, worker, 4);
    const val = concatDatasets(o.store.listShards().map((s) => o.job.models.validationSet(s)));
    const start = routingImbalance(o.job.top.serving()!, val);
    const dropped: string[] = [];
    for (let round = 0; round < 6; round++) {
      const assign = o.core.assign(worker);
      if (assign.type !== 'assign') break;
      const honest = await result(o, assign);
      const decoded = decodeUnitDelta(honest.body, 'honest', 2);
      // A bias shift of 4 on both path nodes (norm 5.7, far under top.max_norm), towards this shard.
      const toward = assign.shard % 2 === 0 ? -4 : 4;
      const body = encodeUnitDelta(decoded.delta, {
        weight: new Float32Array(2 * data.train.inputWidth),
        bias: Float32Array.of(assign.shard < 2 ? -4 : 4, toward),
      });
      assert.equal(submit(o, worker, assign, { body, samples: honest.samples }).response.status, 'accepted');
      const event = o.store.eventsAfter(0, 10_000).findLast((e) => e.kind === 'accepted')!.data as {
        top_dropped?: string;
      };
      if (event.top_dropped !== undefined) dropped.push(event.top_dropped);
      await o.job.settled();
      o.clock.advance(1000);
    }
    assert.ok(dropped.length > 0, 'some steps were dropped');
    const end = routingImbalance(o.job.top.current()!, val);
    assert.ok(end <= Math.max(start, 1) * 1.1 + 1e-9, `imbalance ${end} from ${start}`);
    o.store.close();
  });

  void it('loses nothing when the coordinator dies in the middle of a re-route', async () => {
    const path = join(dir, 'b');
    const quiet = { ...SETTINGS, top: { ...SETTINGS.top, reroute_every: 1000 } };
    const first = await open(path, quiet);
    const worker = first.core.connect(hello('bob')).id;
    await runUnits(first, worker, 4);
    // A re-route at a quarter of the budget may just have caught up with the top: move it on.
    for (
      let more = 0;
      more < 8 && first.store.getTop()!.version === first.store.getTop()!.routedVersion;
      more++
    )
      await runUnits(first, worker, 1);
    const inFlight = first.core.assign(worker) as Assign;
    const shardsBefore = first.store.listShards();
    const topBefore = first.store.getTop()!;
    assert.ok(topBefore.version > 0);
    first.store.close();

    // Restarted with re-routing due; the process dies while writing the new routing down.
    const dying = new SqliteStore(join(path, 'arbor.db'));
    const crash = new Proxy(dying, {
      get(target, key, receiver) {
        if (key === 'setTop')
          return () => {
            throw new Error('killed mid-re-route');
          };
        const value = Reflect.get(target, key, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    await assert.rejects(open(path, { ...quiet, top: { ...quiet.top, reroute_every: 1 } }, crash), /killed/);
    assert.deepEqual(dying.listShards(), shardsBefore, 'no shard half-moved');
    assert.deepEqual(dying.getTop(), topBefore);
    dying.close();

    const back = await open(path, { ...quiet, top: { ...quiet.top, reroute_every: 1 } });
    assert.equal(back.store.getTop()!.routingVersion, topBefore.routingVersion + 1, 'the re-route ran');
    assertEachSampleOnce(back);
    // The unit leased before the crash is still held, and its result still counts.
    const outcome = submit(back, worker, inFlight, await result(back, inFlight));
    assert.equal(outcome.response.status, 'accepted', outcome.response.reason);
    await back.job.settled();
    back.store.close();
  });
});
