/**
 * A volunteer sees what they give: every verdict on a result comes with the volunteer's
 * credit and place by credit, and how much of the job is trained, through a real worker loop
 * against a real coordinator; the worker's log line says them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { selectBackend } from '../../shared/backend.ts';
import type { VolunteerStanding } from '../../worker/upload-result.ts';
import { runWorker } from '../../worker/run-worker.ts';
import { type SmallCoordinator, startSmallCoordinator } from '../helpers/small-job.ts';

let small: SmallCoordinator;
before(async () => {
  await selectBackend('wasm');
  small = await startSmallCoordinator({ settings: { shard_epochs: 4, local_epochs: 1 } });
});
after(async () => small?.close());

async function volunteer(
  name: string,
  units: number,
): Promise<{ told: VolunteerStanding[]; lines: string[] }> {
  const told: VolunteerStanding[] = [];
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  await runWorker({
    url: small.wsUrl,
    name,
    backend: 'wasm',
    gpu: false,
    threads: 1,
    samplesPerSecond: 1000,
    maxUnits: units,
    log,
    onResult: (_unit, verdict, _samples, standing) => {
      assert.equal(verdict, 'accepted');
      if (standing !== undefined) told.push(standing);
    },
  });
  return { told, lines };
}

void describe("a volunteer's standing", { timeout: 240_000 }, () => {
  void it('comes with every verdict: credit, place by credit, and the job trained so far', async () => {
    const { store } = small.coordinator;
    const first = await volunteer('first', 2);
    assert.equal(first.told.length, 2);
    const firstId = store.listWorkers().find((w) => w.name === 'first')!.id;
    assert.equal(first.told[1]!.credit, store.getWorker(firstId)!.credit);
    assert.ok(first.told[1]!.credit > first.told[0]!.credit);
    assert.deepEqual([first.told[1]!.rank, first.told[1]!.volunteers], [1, 1]);
    assert.ok(first.told[1]!.jobProgress > first.told[0]!.jobProgress && first.told[1]!.jobProgress < 1);
    const finished = first.lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l['msg'] === 'unit finished');
    assert.equal(finished.at(-1)!['credit'], first.told[1]!.credit);
    assert.equal(finished.at(-1)!['rank'], '1 of 1');
    assert.match(String(finished.at(-1)!['job']), /^\d+\.\d%$/);

    const second = await volunteer('second', 1);
    assert.deepEqual([second.told[0]!.rank, second.told[0]!.volunteers], [2, 2], 'one unit is less than two');
    assert.ok(second.told[0]!.jobProgress > first.told[1]!.jobProgress);
  });
});
