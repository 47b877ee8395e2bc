import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Assign } from '../../proto/messages.ts';
import { PROTOCOL_VERSION } from '../../proto/version.ts';
import { decodeFFF, encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import { ManualClock } from '../../shared/clock.ts';
import type { DataSplit, Dataset } from '../../shared/data/dataset.ts';
import { decodeShardData } from '../../shared/data/shard-blob.ts';
import { trainUnit } from '../../shared/fff/local-training.ts';
import type { OptimizerCarry, TrainHooks } from '../../shared/fff/trainer.ts';
import { assignedRecipe } from '../../worker/assigned-recipe.ts';
import { CoordinatorCore } from '../core/coordinator-core.ts';
import type { JobConfig } from '../job/config.ts';
import { TrainingJob } from '../job/training-job.ts';
import { BlobStore } from '../store/blob-store.ts';
import { SqliteStore } from '../store/sqlite-store.ts';
import { EventQueue } from './event-queue.ts';
import { type Timeline, utilization } from './timeline.ts';
import { type SimulatedVolunteer, type VolunteerMix, volunteersOf } from './volunteer-mix.ts';

export interface SimulationResult {
  readonly volunteers: number;
  readonly hard_test_acc: number;
  readonly virtual_wall_s: number;
  /** Busy share of volunteers' time while budget was left to hand out. */
  readonly utilization: number;
  /** Share of volunteers' training time whose result was never merged. */
  readonly wasted_fraction: number;
  readonly accepted: number;
  readonly rejected: number;
  /** Rejections by the acceptance rule that made them. */
  readonly rejected_by: Readonly<Record<string, number>>;
  readonly mean_staleness: number | null;
  readonly units: number;
  readonly partial: number;
  readonly vanished: number;
  readonly real_seconds: number;
}

interface Running {
  readonly assign: Assign;
  readonly startMs: number;
  readonly endMs: number;
}

/**
 * A deterministic discrete-event run of simulated volunteers against the real coordinator
 * core (real SQLite store and blobs, real acceptance and merging) on a virtual clock. Every
 * unit is trained for real, one at a time; only time is simulated, from each volunteer's
 * speed, so a crowd of hundreds runs on one machine.
 */
export async function simulate(
  config: JobConfig,
  data: DataSplit,
  mix: VolunteerMix,
  log: Logger,
  dir = mkdtempSync(join(tmpdir(), 'arbor-simulate-')),
): Promise<SimulationResult> {
  const started = performance.now();
  const clock = new ManualClock(0);
  const store = new SqliteStore(join(dir, 'arbor.db'));
  const blobs = new BlobStore(join(dir, 'arbor.db.blobs'));
  const job = new TrainingJob({
    store,
    blobs,
    config,
    data,
    log,
    clock,
    finalModelPath: join(dir, 'arbor-final.safetensors'),
  });
  const core = new CoordinatorCore({ job, store, blobs, clock, log });
  await core.prepare();
  let finished = false;
  void core.done.then(() => (finished = true));

  const queue = new EventQueue();
  const timeline: Timeline = { present: new Map(), busy: new Map(), budgetGoneMs: Infinity };
  const ids = new Map<SimulatedVolunteer, string>();
  const cached = new Map<string, Set<number>>();
  const shardData = new Map<string, Dataset>();
  const counts = { units: 0, partial: 0, vanished: 0, wastedMs: 0, busyMs: 0 };

  const busy = (id: string, from: number, to: number, merged: boolean) => {
    timeline.busy.set(id, [...(timeline.busy.get(id) ?? []), [from, to]]);
    counts.busyMs += to - from;
    if (!merged) counts.wastedMs += to - from;
  };
  const gone = new Set<string>();
  const leave = (volunteer: SimulatedVolunteer, at: number) => {
    const id = ids.get(volunteer)!;
    gone.add(id);
    core.disconnect(id);
    const [from] = timeline.present.get(id)!;
    timeline.present.set(id, [from, at]);
  };

  // Each volunteer keeps its optimizer's state for its next unit of the same shard, as workers do.
  const carried = new Map<string, { shard: number; carry: OptimizerCarry; version?: number }>();
  const train = async (id: string, assign: Assign, stopAfterSteps?: number) => {
    const base = decodeFFF(blobs.read(assign.base_blob.sha256));
    const shard = assign.data_blob.sha256;
    if (!shardData.has(shard)) shardData.set(shard, decodeShardData(blobs.read(shard)));
    const { options, window } = assignedRecipe(assign);
    let steps = 0;
    const previous = carried.get(id);
    const hooks: TrainHooks = {
      ...(stopAfterSteps === undefined ? {} : { shouldStop: () => steps++ >= stopAfterSteps }),
      ...(mix.carryOptimizer && previous?.shard === assign.shard
        ? {
            resumeOptimizer: { ...previous.carry, momentum: previous.version === assign.base_version },
          }
        : {}),
      ...(mix.carryOptimizer
        ? { onOptimizerState: (carry: OptimizerCarry) => carried.set(id, { shard: assign.shard, carry }) }
        : {}),
    };
    return trainUnit(base, shardData.get(shard)!, options, hooks, window);
  };

  const submit = async (volunteer: SimulatedVolunteer, run: Running, stopAfterSteps?: number) => {
    const id = ids.get(volunteer)!;
    const result = await train(id, run.assign, stopAfterSteps);
    const outcome = core.submit({
      unitId: run.assign.unit_id,
      workerId: id,
      leaseToken: run.assign.lease_token,
      body: encodeFFF(result.delta),
      metrics: { train_loss: Math.max(0, result.finalLoss || 0), samples: result.samples, seconds: 1 },
    });
    busy(id, run.startMs, clock.now(), outcome.response.status === 'accepted');
    const carry = carried.get(id);
    if (carry !== undefined && outcome.response.version !== undefined)
      carry.version = outcome.response.version;
  };

  const ask = (volunteer: SimulatedVolunteer) => {
    const id = ids.get(volunteer)!;
    const answer = core.assign(id, [...(cached.get(id) ?? [])]);
    if (timeline.budgetGoneMs === Infinity && job.openUnits() === store.unitsByState().leased)
      timeline.budgetGoneMs = clock.now();
    if (answer.type === 'no_work') {
      if (answer.done === true) leave(volunteer, clock.now());
      else queue.at(clock.now() + answer.retry_after_ms, () => ask(volunteer));
      return;
    }
    counts.units++;
    cached.set(id, (cached.get(id) ?? new Set<number>()).add(answer.shard));
    const samples = answer.recipe.local_epochs * shardSamples(answer);
    const duration = Math.max(1, Math.round((samples / volunteer.samplesPerSecond) * 1000));
    const run = { assign: answer, startMs: clock.now(), endMs: clock.now() + duration };
    const beats = (at: number) => {
      if (at >= run.endMs || gone.has(id)) return;
      queue.at(at, () => {
        core.heartbeat(id, {
          type: 'heartbeat',
          unit_id: answer.unit_id,
          lease_token: answer.lease_token,
          step: 0,
          total_steps: 1,
        });
        beats(at + config.lease_ms / 2);
      });
    };
    beats(clock.now() + config.lease_ms / 2);
    if (volunteer.rng() < mix.vanish) {
      const at = run.startMs + Math.round(volunteer.rng() * duration);
      queue.at(at, () => {
        counts.vanished++;
        busy(id, run.startMs, at, false);
        leave(volunteer, at);
        queue.at((store.getUnit(answer.unit_id)?.deadlineMs ?? at) + 1, () => void core.expire());
      });
    } else if (volunteer.leaveMs < run.endMs) {
      queue.at(volunteer.leaveMs, async () => {
        const fraction = (volunteer.leaveMs - run.startMs) / duration;
        const totalSteps = Math.round(
          answer.recipe.local_epochs * Math.ceil(shardSamples(answer) / answer.recipe.batch),
        );
        const steps = Math.floor(fraction * totalSteps);
        if (steps >= 1) {
          counts.partial++;
          await submit(volunteer, run, steps);
        } else {
          core.release(id, {
            type: 'release',
            unit_id: answer.unit_id,
            lease_token: answer.lease_token,
            reason: 'leaving',
          });
          busy(id, run.startMs, clock.now(), false);
        }
        leave(volunteer, clock.now());
      });
    } else
      queue.at(run.endMs, async () => {
        await submit(volunteer, run);
        ask(volunteer);
      });
  };
  const shardSamples = (assign: Assign) => store.getShard(assign.shard)!.samples;

  for (const volunteer of volunteersOf(mix))
    queue.at(volunteer.joinMs, () => {
      const worker = core.connect({
        type: 'hello',
        protocol: PROTOCOL_VERSION,
        name: volunteer.name,
        capabilities: {
          backend: 'simulated',
          threads: 1,
          gpu: false,
          samples_per_s: volunteer.samplesPerSecond,
        },
      });
      ids.set(volunteer, worker.id);
      timeline.present.set(worker.id, [clock.now(), Infinity]);
      // Queued, so that volunteers arriving together are all connected before any asks.
      queue.at(clock.now(), () => ask(volunteer));
    });

  while (!finished) {
    const next = queue.next();
    if (next === undefined) throw new Error('the simulation ran out of volunteers before the job was done');
    clock.advance(next.atMs - clock.now());
    await next.run();
  }
  const final = await core.done;
  const wallMs = clock.now();
  const stale = store.shardActivity().filter((a) => a.meanStaleness !== null);
  const results = store.resultCounts();
  const rejectedBy = Object.fromEntries(store.rejectionsByRule().map((r) => [r.rule, r.n]));
  store.close();
  return {
    volunteers: mix.volunteers,
    hard_test_acc: final.hardTestAcc,
    virtual_wall_s: wallMs / 1000,
    utilization: utilization(timeline, wallMs),
    wasted_fraction: counts.wastedMs / Math.max(1, counts.busyMs),
    accepted: results.accepted,
    rejected: results.rejected,
    rejected_by: rejectedBy,
    mean_staleness:
      stale.length === 0
        ? null
        : stale.reduce((sum, a) => sum + a.meanStaleness! * a.accepted, 0) /
          stale.reduce((sum, a) => sum + a.accepted, 0),
    units: counts.units,
    partial: counts.partial,
    vanished: counts.vanished,
    real_seconds: (performance.now() - started) / 1000,
  };
}
