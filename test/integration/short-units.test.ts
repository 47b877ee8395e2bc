/**
 * Many volunteers on few shards: real worker loops on a real coordinator share each shard
 * through short units cut from its schedule, several of a shard in flight at once; one
 * volunteer vanishes mid-unit (its socket closes, nothing uploaded) and its unit, window and
 * all, goes to another once the lease runs out on the injected clock.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type WebSocket from 'ws';
import pino from 'pino';
import { selectBackend } from '../../shared/backend.ts';
import { ManualClock } from '../../shared/clock.ts';
import { runWorker } from '../../worker/run-worker.ts';
import { type SmallCoordinator, startSmallCoordinator } from '../helpers/small-job.ts';
import { joinAs } from '../helpers/volunteer.ts';

const log = pino({ level: 'silent' });
const clock = new ManualClock(Date.now());
const opened: WebSocket[] = [];
let small: SmallCoordinator;

before(async () => {
  await selectBackend('wasm');
  small = await startSmallCoordinator({
    clock,
    settings: { shard_epochs: 2, local_epochs: 2, unit_seconds: 60 },
  });
});
after(async () => {
  opened.forEach((ws) => ws.terminate());
  await small?.close();
});

void describe('short units', { timeout: 240_000 }, () => {
  void it('volunteers share two shards in short units; a vanished one costs one unit', async () => {
    const { store } = small.coordinator;
    // Four connected, two shards: each shard's units in flight together span an eighth of its schedule.
    const leaver = await joinAs(small.wsUrl, undefined, 'leaver', opened);
    const others = await Promise.all(
      ['a', 'b', 'c'].map((name) => joinAs(small.wsUrl, undefined, name, opened)),
    );
    const abandoned = await leaver.requestWork();
    const window = abandoned.recipe.schedule;
    // Two in flight per shard are averaged into one step, so each trains twice what it advances.
    const cutTo = store.getUnit(abandoned.unit_id)!.cutTo!;
    assert.ok(cutTo - window.from <= 1 / 16 + 1e-9, `a short advance: ${cutTo} from ${window.from}`);
    assert.ok(Math.abs(window.to - window.from - 2 * (cutTo - window.from)) < 1e-9, JSON.stringify(window));
    assert.ok(
      Math.abs(abandoned.recipe.local_epochs - 2 * (window.to - window.from)) < 1e-9,
      'two passes in all, the window of them',
    );
    leaver.ws.terminate();
    // The others stay connected (and idle) throughout: the crowd the units are cut for.
    assert.equal(others.length, 3);
    clock.advance(small.coordinator.config.lease_ms + 1);
    small.coordinator.core.expire();
    assert.equal(store.getUnit(abandoned.unit_id)?.state, 'ready', 'the abandoned unit is back in the queue');

    const volunteers = ['one', 'two', 'three', 'four'].map((name) =>
      runWorker({
        url: small.wsUrl,
        name,
        backend: 'wasm',
        gpu: false,
        threads: 1,
        samplesPerSecond: 1000,
        log,
      }),
    );
    const summaries = await Promise.all(volunteers);
    assert.ok(
      summaries.every((s) => s.end === 'done' && s.accepted > 0),
      JSON.stringify(summaries),
    );

    const unit = store.getUnit(abandoned.unit_id)!;
    assert.equal(unit.state, 'accepted', 'the abandoned unit was trained by someone else');
    assert.deepEqual(unit.window, {
      from: window.from,
      to: window.to,
      epochs: abandoned.recipe.local_epochs,
    });
    for (const shard of store.listShards()) {
      // The schedule each accepted unit moved on: its window's start to where its cut ends.
      const windows = store
        .listUnits()
        .filter((u) => u.shard === shard.id && u.state === 'accepted')
        .map((u) => [u.window!.from, u.cutTo ?? u.window!.to] as const)
        .sort((x, y) => x[0] - y[0]);
      // A shard smaller than the smallest unit (eight minibatches) is cut into fewer.
      const floor = Math.min(1, (8 * small.coordinator.job.schedule.batchOf(shard)) / shard.budgetSamples);
      assert.ok(
        windows.length >= Math.min(16, Math.floor(1 / floor)),
        `shard ${shard.id}: ${windows.length} short units`,
      );
      assert.equal(windows[0]![0], 0);
      assert.equal(windows.at(-1)![1], 1);
      for (let k = 1; k < windows.length; k++)
        assert.ok(Math.abs(windows[k]![0] - windows[k - 1]![1]) < 1e-9, `shard ${shard.id}: advances tile`);
      assert.ok(
        Math.abs(shard.trainedSamples - shard.budgetSamples) <= 0.02 * shard.budgetSamples,
        `shard ${shard.id} trained its budget: ${shard.trainedSamples} of ${shard.budgetSamples}`,
      );
    }
    const stale = store
      .listResults()
      .filter((r) => r.status === 'accepted' && r.mergedVersion! - 1 > r.baseVersion);
    assert.ok(stale.length > 0, 'units of a shard were in flight together');
  });
});
