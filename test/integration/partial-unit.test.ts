/**
 * A volunteer that must stop mid-unit: a real worker loop against a real coordinator is
 * stopped (as Ctrl-C does) during its second pass over the shard. It sends the steps it
 * trained as a partial result, which is merged and credited for those samples; the rest of
 * the unit's window becomes a unit of its own that another worker then trains to the end.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { selectBackend } from '../../shared/backend.ts';
import { runWorker } from '../../worker/run-worker.ts';
import { type SmallCoordinator, startSmallCoordinator } from '../helpers/small-job.ts';

const TOKEN = 'partial-token';
let small: SmallCoordinator;
const log = pino({ level: 'silent' });

before(async () => {
  await selectBackend('wasm');
  small = await startSmallCoordinator({
    token: TOKEN,
    settings: { shard_epochs: 2, local_epochs: 2, in_flight_span: 1 },
  });
});
after(async () => small?.close());

const volunteer = (name: string, signal?: AbortSignal, onEpoch?: (epoch: number) => void) =>
  runWorker({
    url: small.wsUrl,
    token: TOKEN,
    name,
    backend: 'wasm',
    gpu: false,
    threads: 1,
    samplesPerSecond: 1000,
    log,
    ...(signal ? { signal } : {}),
    ...(onEpoch ? { onUnitProgress: (_unit, report) => onEpoch(report.epoch) } : {}),
  });

void describe('partial units', { timeout: 240_000 }, () => {
  void it('a worker stopped in its second pass sends what it trained; the rest is trained by another', async () => {
    const { store, job } = small.coordinator;
    const stop = new AbortController();
    const first = await volunteer('leaving', stop.signal, (epoch) => {
      if (epoch >= 1) stop.abort();
    });
    assert.deepEqual([first.end, first.units, first.accepted], ['stopped', 1, 1]);

    const [result] = store.listResults();
    const unit = store.getUnit(result!.unitId)!;
    const shard = store.getShard(unit.shard)!;
    const whole = 2 * shard.samples;
    assert.ok(
      result!.samples > shard.samples && result!.samples < whole,
      `credited for what it trained: ${result!.samples} of ${whole}`,
    );
    assert.equal(store.getWorker(result!.workerId)!.credit, result!.samples);
    const rest = store.listUnits().find((u) => u.id.includes('-p'))!;
    assert.equal(rest.shard, unit.shard);
    const from = result!.samples / whole;
    assert.ok(Math.abs(rest.window!.from - from) < 1e-9, `the rest starts at ${from}`);
    assert.equal(rest.window!.to, 1);
    assert.ok(Math.abs(rest.window!.epochs - (2 - result!.samples / shard.samples)) < 1e-9);
    assert.equal(job.schedule.scheduleOf(rest).epochs, 2);

    const second = await volunteer('staying');
    assert.equal(second.end, 'done');
    assert.equal(store.getUnit(rest.id)!.state, 'accepted');
    const trained = store.getShard(unit.shard)!.trainedSamples;
    assert.ok(
      Math.abs(trained - shard.budgetSamples) <= job.schedule.batchOf(shard),
      `the shard trained its budget (${trained} of ${shard.budgetSamples}): the part, then the rest`,
    );
  });
});
