/**
 * A volunteer that must stop mid-unit: a real worker loop against a real coordinator is
 * stopped (as Ctrl-C does) during its second pass over the shard. It sends the pass it
 * finished as a partial result, which is merged and credited for one pass; the rest of the
 * unit's window becomes a unit of its own that another worker then trains to the end.
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
  small = await startSmallCoordinator({ token: TOKEN, settings: { shard_epochs: 2, local_epochs: 2 } });
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
  void it('a worker stopped in its second pass sends the first; the rest is trained by another', async () => {
    const { store, job } = small.coordinator;
    const stop = new AbortController();
    const first = await volunteer('leaving', stop.signal, (epoch) => {
      if (epoch >= 1) stop.abort();
    });
    assert.deepEqual([first.end, first.units, first.accepted], ['stopped', 1, 1]);

    const [result] = store.listResults();
    const unit = store.getUnit(result!.unitId)!;
    const shard = store.getShard(unit.shard)!;
    assert.equal(result!.samples, shard.samples, 'credited for one pass of two');
    assert.equal(store.getWorker(result!.workerId)!.credit, shard.samples);
    const rest = store.listUnits().find((u) => u.id.includes('-p'))!;
    assert.equal(rest.shard, unit.shard);
    assert.deepEqual(rest.window, { from: 0.5, to: 1, epochs: 1 });
    assert.deepEqual(job.scheduleOf(rest), { epochs: 2, from: 0.5, to: 1 });

    const second = await volunteer('staying');
    assert.equal(second.end, 'done');
    assert.equal(store.getUnit(rest.id)!.state, 'accepted');
    const trained = store.getShard(unit.shard)!.trainedSamples;
    assert.equal(
      trained,
      shard.budgetSamples,
      'the shard trained its budget exactly: one pass, then the rest',
    );
  });
});
