/**
 * Cutting units from the shards' schedules: which shard, how long, and that the windows of a
 * shard tile its schedule exactly, whatever speeds and crowd sizes ask.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CutRequest, MIN_UNIT_BATCHES, cutUnit } from '../../coordinator/core/unit-cutter.ts';
import { parseJobConfig } from '../../coordinator/job/config.ts';
import type { Shard } from '../../coordinator/store/store.ts';
import { createRng } from '../../shared/random.ts';

const shard = (id: number, samples: number): Shard => ({
  id,
  version: 0,
  samples,
  dataBlob: `d${id}`,
  weightsBlob: `w${id}`,
  budgetSamples: samples * 12,
  trainedSamples: 0,
  momentumBlob: null,
  valBlob: null,
  valLoss: null,
});

const config = parseJobConfig({ shard_epochs: 12, local_epochs: 12, unit_seconds: 60, batch: 32 });
const request = (over: Partial<CutRequest> = {}): CutRequest => ({
  samplesPerSecond: 100,
  speedUnmeasured: false,
  cachedShards: [],
  workers: 1,
  now: 0,
  batch: () => 32,
  inFlight: new Map(),
  share: () => 1,
  ...over,
});

void describe('cutUnit', () => {
  void it('sizes a unit to unit_seconds of the measured speed, a quarter of it while only claimed', () => {
    const shards = [shard(0, 6000)];
    const measured = cutUnit(config, shards, new Map(), request({ samplesPerSecond: 100 }))!;
    assert.ok(
      Math.abs(measured.window!.epochs * 6000 - 5984) < 1e-6,
      '100 samples/s × 60 s, in whole minibatches',
    );
    const claimed = cutUnit(config, shards, new Map(), request({ speedUnmeasured: true }))!;
    assert.ok(Math.abs(claimed.window!.epochs * 6000 - 1472) < 1e-6, 'a quarter of it: 46 minibatches');
  });

  void it('never cuts more than local_epochs passes, nor less than a few minibatches', () => {
    const shards = [shard(0, 8192)];
    const fast = cutUnit(config, shards, new Map(), request({ samplesPerSecond: 1e6 }))!;
    assert.equal(fast.window!.to, 1 / 8, 'at most in_flight_span of the schedule, even alone');
    const capped = parseJobConfig({ shard_epochs: 12, local_epochs: 1, batch: 32 });
    assert.equal(cutUnit(capped, shards, new Map(), request({ samplesPerSecond: 1e6 }))!.window!.epochs, 1);
    const slow = cutUnit(config, shards, new Map(), request({ samplesPerSecond: 0.001 }))!;
    assert.ok(Math.abs(slow.window!.epochs * 8192 - MIN_UNIT_BATCHES * 32) < 1e-6);
  });

  void it('averaged, the units of a crowd overlap: each moves the schedule by its share of its window', () => {
    const shards = [shard(0, 8192)];
    const unit = cutUnit(
      config,
      shards,
      new Map(),
      request({ samplesPerSecond: 1e6, workers: 8, share: (n) => 1 / n }),
    )!;
    assert.equal(unit.window!.to, 1 / 8, 'it trains an eighth of the schedule');
    assert.equal(unit.share, 1 / 8);
    assert.equal(unit.cutTo, 1 / 64, 'and moves the cut on by an eighth of that');
    const next = cutUnit(
      config,
      shards,
      new Map([[0, unit.cutTo!]]),
      request({ samplesPerSecond: 1e6, workers: 8, share: (n) => 1 / n }),
    )!;
    assert.deepEqual([next.window!.from, next.window!.to], [1 / 64, 1 / 64 + 1 / 8]);
    const full = cutUnit(
      parseJobConfig({ shard_epochs: 12, local_epochs: 12, batch: 32, max_peers: 2 }),
      shards,
      new Map(),
      request({ workers: 8, inFlight: new Map([[0, 2]]) }),
    );
    assert.equal(full, undefined, 'a shard with max_peers units in flight takes no more');
  });

  void it('gives each of many workers a fair share of what is left, so that none idles', () => {
    const shards = [shard(0, 8192), shard(1, 8192)];
    const unit = cutUnit(config, shards, new Map(), request({ samplesPerSecond: 1e6, workers: 16 }))!;
    assert.equal(unit.window!.to, 1 / 64, 'eight to a shard, together an eighth of its schedule in flight');
    const alone = cutUnit(config, shards, new Map(), request({ samplesPerSecond: 1e6, workers: 2 }))!;
    assert.equal(alone.window!.to, 1 / 8, 'one worker to a shard: an eighth, then the next');
  });

  void it('takes the shard with the least handed out, or a cached one within in_flight_span of it', () => {
    const shards = [shard(0, 6000), shard(1, 6000), shard(2, 6000)];
    const cut = new Map([
      [0, 0.5],
      [1, 0.2],
      [2, 0.25],
    ]);
    assert.equal(cutUnit(config, shards, cut, request())!.shard, 1);
    assert.equal(cutUnit(config, shards, cut, request({ cachedShards: [2] }))!.shard, 2, 'within 1/8');
    assert.equal(cutUnit(config, shards, cut, request({ cachedShards: [0] }))!.shard, 1, 'too far ahead');
    assert.equal(cutUnit(config, shards, new Map([...cut].map(([k]) => [k, 1])), request()), undefined);
  });

  void it("tiles each shard's schedule exactly, whatever the speeds and crowds", () => {
    const rng = createRng(7);
    const shards = [shard(0, 5000), shard(1, 311), shard(2, 40)];
    const cut = new Map<number, number>();
    const tiles = new Map<number, [number, number][]>();
    for (let i = 0; i < 10_000; i++) {
      const unit = cutUnit(
        config,
        shards,
        cut,
        request({ samplesPerSecond: rng() * 300, workers: 1 + Math.floor(rng() * 64) }),
      );
      if (unit === undefined) break;
      const { from, to, epochs } = unit.window!;
      assert.ok(to > from);
      const samples = shards[unit.shard]!.samples;
      assert.ok(Math.abs(epochs - (to - from) * 12) < 1e-9, 'epochs match the window');
      assert.ok(
        epochs * samples >= Math.min(samples, 256) - 1e-6 || to === 1,
        `no crumbs: ${epochs * samples}`,
      );
      cut.set(unit.shard, to);
      tiles.set(unit.shard, [...(tiles.get(unit.shard) ?? []), [from, to]]);
    }
    for (const s of shards) {
      const windows = tiles.get(s.id)!;
      assert.equal(windows[0]![0], 0);
      assert.equal(windows.at(-1)![1], 1);
      for (let k = 1; k < windows.length; k++) assert.equal(windows[k]![0], windows[k - 1]![1]);
    }
  });
});
