/**
 * `arbor simulate` underneath: simulated volunteers against the real core on a virtual
 * clock. Deterministic for the same job and crowd; volunteers who vanish cost the work they
 * were doing and nothing else; a lone volunteer never waits and never works in vain.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { parseJobConfig } from '../../coordinator/job/config.ts';
import { type SimulationResult, simulate } from '../../coordinator/simulate/simulation.ts';
import { compareRun, describeComparison } from '../../cli/simulate-compare.ts';
import { DEFAULT_MIX, type VolunteerMix } from '../../coordinator/simulate/volunteer-mix.ts';
import { selectBackend } from '../../shared/backend.ts';
import { SMALL_JOB, tinyData } from '../helpers/small-job.ts';

const dirs: string[] = [];
const log = pino({ level: 'silent' });
const config = parseJobConfig({
  ...SMALL_JOB,
  data: 'tiny',
  shard_epochs: 4,
  local_epochs: 4,
  lease_ms: 60_000,
});

before(async () => {
  await selectBackend('wasm');
});
after(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

async function run(
  mix: Partial<VolunteerMix> & { volunteers: number },
  settings: Record<string, unknown> = {},
  targets: number[] = [],
): Promise<SimulationResult> {
  const dir = mkdtempSync(join(tmpdir(), 'arbor-simulate-test-'));
  dirs.push(dir);
  const job = parseJobConfig({ ...config, ...settings });
  return simulate(job, tinyData(), { ...DEFAULT_MIX, samplesPerSecond: 50, ...mix }, log, dir, {
    curveEverySeconds: 1,
    targets,
  });
}

const withoutTiming = ({ real_seconds: _, ...rest }: SimulationResult) => rest;

void describe('simulate', { timeout: 120_000 }, () => {
  void it('ends beside one volunteer a shard and the central twin, on the same job and budget', async () => {
    const crowd = await run({ volunteers: 6 });
    const asked: number[] = [];
    const comparison = await compareRun(config, tinyData(), crowd, (volunteers) => {
      asked.push(volunteers);
      return run({ volunteers });
    });
    assert.deepEqual(asked, [2 ** config.frozen], 'one steady volunteer for each shard');
    assert.equal(comparison.crowd.volunteers, 6);
    assert.equal(comparison.crowd.hard_test_acc, crowd.hard_test_acc);
    assert.equal(comparison.one_per_shard.volunteers, 2 ** config.frozen);
    for (const acc of [comparison.one_per_shard.hard_test_acc, comparison.central_twin.hard_test_acc])
      assert.ok(acc >= 0 && acc <= 1, `an accuracy: ${acc}`);
    const table = describeComparison(comparison).trim().split('\n');
    assert.equal(table.length, 4);
    assert.match(table[1]!, /^the crowd \(6 volunteers\)\s+\d+\.\d{2}%\s+\d+ virtual s$/);
    assert.match(table[3]!, /^the central twin \(arbor train\)\s+\d+\.\d{2}%\s+\d+ s here$/);
  });

  void it('a lone volunteer trains the whole budget without waiting and without waste', async () => {
    const result = await run({ volunteers: 1 });
    assert.equal(result.utilization, 1);
    assert.equal(result.wasted_fraction, 0);
    assert.equal(result.mean_staleness, 0);
    assert.ok(result.shards.every((s) => s.peak_in_flight === 1));
    assert.ok(result.accepted >= result.shards.length && result.rejected === 0, JSON.stringify(result));
  });

  void it('a crowd with cheaters: none of their copies, served moves or token deltas earn credit, and the job ends', async () => {
    const result = await run({ volunteers: 8, cheaters: 0.5 });
    assert.ok(result.cheats !== undefined && result.cheats.submitted >= 4, JSON.stringify(result.cheats));
    // Copies, served moves and token deltas never pass; a negated honest delta is judged by
    // validation loss alone, and on this near-chance tiny job it may pass within the tolerance.
    const passed = Object.keys(result.cheats.accepted_kinds).filter((kind) => kind !== 'negated');
    assert.deepEqual(passed, [], JSON.stringify(result.cheats));
    assert.ok((result.rejected_by['own-work'] ?? 0) > 0, JSON.stringify(result.rejected_by));
  });

  void it('a crowd that vanishes and leaves: the job ends, the same way every time', async () => {
    const crowd = { volunteers: 12, speedSpread: 10, vanish: 0.3, leave: 0.5, leaveWithinSeconds: 5 };
    const first = await run(crowd);
    assert.ok(first.vanished > 0 && first.partial > 0, JSON.stringify(first));
    assert.ok(first.wasted_fraction > 0 && first.wasted_fraction < 1);
    assert.ok(first.utilization > 0 && first.utilization <= 1);
    assert.ok(
      first.shards.some((s) => s.peak_in_flight > 1),
      'units of a shard in flight together',
    );
    assert.ok(first.mean_staleness! > 0);
    assert.deepEqual(withoutTiming(await run(crowd)), withoutTiming(first));
  });

  void it('counts every volunteer over the whole job: merged, idle and wasted time add up to all of it', async () => {
    const crowd = await run({ volunteers: 10 }, { outer: { strategy: 'delayed-nesterov' } }, [0.5]);
    const total = crowd.utilization + crowd.idle_fraction + crowd.wasted_fraction;
    assert.ok(Math.abs(total - 1) < 1e-9, `shares add up to ${total}`);
    assert.ok(
      crowd.curve.length >= 2 && crowd.curve.at(-1)!.acc === crowd.hard_test_acc,
      'the curve ends at the final model',
    );
    assert.ok(
      crowd.curve.every((p, i) => i === 0 || p.t_s >= crowd.curve[i - 1]!.t_s),
      'in time order',
    );
    const reached = crowd.time_to_acc['0.5'];
    assert.ok(reached === null || crowd.curve.find((p) => p.acc >= 0.5)?.t_s === reached);
  });

  void it("ends when the owner's goal is met: --until acc stops the crowd early", async () => {
    const whole = await run({ volunteers: 4 }, { outer: { strategy: 'delayed-nesterov' }, eval_every: 1 });
    const goal = whole.curve.find((p) => p.acc > 0.3)?.acc ?? whole.hard_test_acc;
    const early = await run(
      { volunteers: 4 },
      { outer: { strategy: 'delayed-nesterov' }, eval_every: 1, until: { accuracy: Math.min(goal, 0.9) } },
    );
    assert.ok(
      early.hard_test_acc >= Math.min(goal, 0.9) - 1e-9,
      `${early.hard_test_acc} against the goal ${goal}`,
    );
    assert.ok(
      early.virtual_wall_s <= whole.virtual_wall_s,
      `${early.virtual_wall_s} s against ${whole.virtual_wall_s} s`,
    );
  });
});
