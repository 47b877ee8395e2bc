import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Assign } from '../../proto/messages.ts';
import { ProtocolError } from '../../proto/errors.ts';
export type { SimulationResult } from './summary.ts';
import { PROTOCOL_VERSION } from '../../proto/version.ts';
import { ManualClock } from '../../shared/clock.ts';
import type { DataSplit, Dataset } from '../../shared/data/dataset.ts';
import { decodeShardData } from '../../shared/data/shard-blob.ts';
import { CHEATS, cheatResult } from './cheats.ts';
import { scratchDir } from './scratch-dir.ts';
import { OptimizerCarrier, trainAssignment } from '../../shared/train-assignment.ts';
import { encodeUnitDelta } from '../../shared/fff/unit-delta.ts';
import { assembleCoordinator } from '../assemble.ts';
import type { JobConfig } from '../job/config.ts';
import { BlobStore } from '../store/blob-store.ts';
import { type Retention, sweepEveryMs } from '../core/upkeep.ts';
import { SqliteStore } from '../store/sqlite-store.ts';
import { EventQueue } from './event-queue.ts';
import { type SimulationResult, summarize } from './summary.ts';
import { type Timeline, crowdTime } from '../read/crowd-time.ts';
import { AccuracyCurve, timeToAccuracy } from './accuracy-curve.ts';
import { type SimulatedVolunteer, type VolunteerMix, volunteersOf } from './volunteer-mix.ts';

interface Running {
  readonly assign: Assign;
  readonly startMs: number;
  readonly endMs: number;
}

export interface SimulationOptions {
  /** The served model's accuracy is recorded every this many virtual seconds. */
  readonly curveEverySeconds: number;
  /** Accuracies whose time of first reaching the report gives. */
  readonly targets: readonly number[];
  /** Told after every event: the virtual time and the share of the job's budget trained. */
  readonly onProgress?: (virtualMs: number, trainedFraction: number) => void;
  /** What the sweeper keeps (coordinator/core/upkeep.ts); its defaults otherwise. */
  readonly retention?: Retention;
}

export const DEFAULT_SIMULATION: SimulationOptions = { curveEverySeconds: 5, targets: [] };

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
  dir?: string,
  options: SimulationOptions = DEFAULT_SIMULATION,
): Promise<SimulationResult> {
  const own = dir === undefined ? scratchDir('arbor-simulate-') : undefined;
  try {
    return await run(config, data, mix, log, dir ?? own!.path, options);
  } finally {
    own?.remove();
  }
}

async function run(
  config: JobConfig,
  data: DataSplit,
  mix: VolunteerMix,
  log: Logger,
  dir: string,
  options: SimulationOptions,
): Promise<SimulationResult> {
  const started = performance.now();
  const clock = new ManualClock(0);
  const store = new SqliteStore(join(dir, 'arbor.db'));
  const blobs = new BlobStore(join(dir, 'arbor.db.blobs'), clock);
  const { job, core } = assembleCoordinator({
    store,
    blobs,
    config,
    data,
    clock,
    log,
    finalModelPath: join(dir, 'arbor-final.safetensors'),
    ...(options.retention !== undefined ? { retention: options.retention } : {}),
  });
  await core.prepare();
  let finished = false;
  void core.done.then(() => (finished = true));

  const queue = new EventQueue();
  const timeline: Timeline = { present: new Map(), busy: new Map() };
  const curve = new AccuracyCurve(options.curveEverySeconds * 1000, () => job.evaluation.testAccuracy());
  const ids = new Map<SimulatedVolunteer, string>();
  const cached = new Map<string, Set<number>>();
  const shardData = new Map<string, Dataset>();
  const inFlight = new Map<number, number>();
  const peakInFlight = new Map<number, number>();
  const counts = { units: 0, partial: 0, vanished: 0, wastedMs: 0, busyMs: 0 };
  const cheats = { submitted: 0, accepted: 0, acceptedKinds: {} as Record<string, number> };

  // The unit each volunteer trains now; a cancelled one (its backup was merged first) frees it at once.
  const current = new Map<string, { run: Running; volunteer: SimulatedVolunteer; landed: () => void }>();
  core.listen({
    cancelUnit: (workerId, unitId) =>
      queue.at(clock.now(), () => {
        const held = current.get(workerId);
        if (held === undefined || held.run.assign.unit_id !== unitId) return;
        current.delete(workerId);
        held.landed();
        busy(workerId, held.run.startMs, clock.now(), false);
        ask(held.volunteer);
      }),
  });
  // When each volunteer's current unit began: what is still training when the job ends is wasted.
  const training = new Map<string, number>();
  const busy = (id: string, from: number, to: number, merged: boolean) => {
    training.delete(id);
    timeline.busy.set(id, [...(timeline.busy.get(id) ?? []), { span: [from, to], merged }]);
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
  const carriers = new Map<string, OptimizerCarrier>();
  const carrierOf = (id: string): OptimizerCarrier => {
    if (!carriers.has(id)) carriers.set(id, new OptimizerCarrier());
    return carriers.get(id)!;
  };
  const train = async (id: string, assign: Assign, stopAfterSteps?: number) => {
    const shard = assign.data_blob.sha256;
    if (!shardData.has(shard)) shardData.set(shard, decodeShardData(blobs.read(shard)));
    let steps = 0;
    const top = assign.top;
    return trainAssignment(
      assign,
      {
        base: job.models.weightsOfBlob(assign.base_blob.sha256),
        data: shardData.get(shard)!,
        ...(top
          ? { top: { blob: blobs.read(top.blob.sha256), siblings: blobs.read(top.siblings_blob.sha256) } }
          : {}),
      },
      {
        ...(stopAfterSteps === undefined ? {} : { shouldStop: () => steps++ >= stopAfterSteps }),
        ...(mix.carryOptimizer ? carrierOf(id).hooksFor(assign) : {}),
      },
    );
  };

  const cheat = (assign: Assign, honest: () => ReturnType<typeof train>) =>
    cheatResult(CHEATS[cheats.submitted++ % CHEATS.length]!, {
      job,
      store,
      blobs,
      assign,
      honest: async () => (await honest()).delta,
    });

  const submit = async (volunteer: SimulatedVolunteer, run: Running, stopAfterSteps?: number) => {
    const id = ids.get(volunteer)!;
    // The owner's goal may have ended the job while this unit trained.
    if (core.phase === 'done') return busy(id, run.startMs, clock.now(), false);
    const result: Awaited<ReturnType<typeof cheat>> | (Awaited<ReturnType<typeof train>> & { kind?: never }) =
      volunteer.cheats
        ? await cheat(run.assign, () => train(id, run.assign))
        : await train(id, run.assign, stopAfterSteps);
    let outcome: ReturnType<typeof core.submit>;
    try {
      outcome = core.submit({
        unitId: run.assign.unit_id,
        workerId: id,
        leaseToken: run.assign.lease_token,
        body: encodeUnitDelta(result.delta, result.pathDelta),
        metrics: {
          train_loss: Number.isFinite(result.finalLoss) ? result.finalLoss : 0,
          samples: result.samples,
          seconds: 1,
        },
      });
      if (volunteer.cheats && outcome.response.status === 'accepted') {
        cheats.accepted++;
        const kind = result.kind!;
        cheats.acceptedKinds[kind] = (cheats.acceptedKinds[kind] ?? 0) + 1;
      }
    } catch (error) {
      // Its lease is gone (a backup copy was merged first): the work is wasted, nothing more.
      if (!(error instanceof ProtocolError)) throw error;
      return busy(id, run.startMs, clock.now(), false);
    }
    await job.settled(); // a re-route the result started, before virtual time moves on
    busy(id, run.startMs, clock.now(), outcome.response.status === 'accepted');
    if (outcome.response.version !== undefined)
      carriers.get(id)?.merged(run.assign.shard, outcome.response.version);
  };

  const ask = (volunteer: SimulatedVolunteer) => {
    const id = ids.get(volunteer)!;
    if (gone.has(id)) return;
    if (clock.now() >= volunteer.leaveMs) return leave(volunteer, clock.now());
    const answer = core.assign(id, [...(cached.get(id) ?? [])]);
    if (answer.type === 'no_work') {
      if (answer.done === true) leave(volunteer, clock.now());
      else queue.at(clock.now() + answer.retry_after_ms, () => ask(volunteer));
      return;
    }
    counts.units++;
    training.set(id, clock.now());
    const flying = (inFlight.get(answer.shard) ?? 0) + 1;
    inFlight.set(answer.shard, flying);
    peakInFlight.set(answer.shard, Math.max(flying, peakInFlight.get(answer.shard) ?? 0));
    const landed = () => inFlight.set(answer.shard, (inFlight.get(answer.shard) ?? 1) - 1);
    cached.set(id, (cached.get(id) ?? new Set<number>()).add(answer.shard));
    const samples = answer.recipe.local_epochs * shardSamples(answer);
    const duration = Math.max(1, Math.round((samples / volunteer.samplesPerSecond) * 1000));
    const run = { assign: answer, startMs: clock.now(), endMs: clock.now() + duration };
    current.set(id, { run, volunteer, landed });
    // Whatever happens to this unit later is moot once it was cancelled.
    const live = () => current.get(id)?.run === run;
    const beats = (at: number) => {
      if (at >= run.endMs || gone.has(id)) return;
      queue.at(at, () => {
        if (!live()) return;
        core.heartbeat(id, {
          type: 'heartbeat',
          unit_id: answer.unit_id,
          lease_token: answer.lease_token,
          step: 0,
          total_steps: 1,
        });
        beats(at + config.heartbeat_ms);
      });
    };
    beats(clock.now() + config.heartbeat_ms);
    if (volunteer.vanishMs < run.endMs && volunteer.vanishMs <= volunteer.leaveMs) {
      // Past its time between units, it takes one more and vanishes somewhere inside it.
      const at =
        volunteer.vanishMs > run.startMs
          ? volunteer.vanishMs
          : run.startMs + Math.round(volunteer.rng() * duration);
      queue.at(at, () => {
        if (!live()) return;
        current.delete(id);
        counts.vanished++;
        landed();
        busy(id, run.startMs, at, false);
        leave(volunteer, at);
        queue.at((store.getUnit(answer.unit_id)?.deadlineMs ?? at) + 1, () => void core.expire());
      });
    } else if (volunteer.leaveMs < run.endMs) {
      queue.at(volunteer.leaveMs, async () => {
        if (!live()) return leave(volunteer, clock.now());
        current.delete(id);
        landed();
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
        if (!live()) return;
        current.delete(id);
        landed();
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

  let peakBlobBytes = blobs.stats().bytes;
  let sweptMs = 0;
  while (!finished) {
    const next = queue.next();
    if (next === undefined) throw new Error('the simulation ran out of volunteers before the job was done');
    curve.advanceTo(next.atMs);
    clock.advance(next.atMs - clock.now());
    await next.run();
    // The sweeper's work (pruning, collecting blobs), at main.ts's pace in virtual time.
    if (clock.now() - sweptMs >= sweepEveryMs(config.lease_ms)) {
      sweptMs = clock.now();
      core.upkeep();
    }
    peakBlobBytes = Math.max(peakBlobBytes, blobs.stats().bytes);
    if (options.onProgress !== undefined) {
      const shards = store.listShards();
      const budget = shards.reduce((sum, shard) => sum + shard.budgetSamples, 0);
      const trained = shards.reduce(
        (sum, shard) => sum + Math.min(shard.trainedSamples, shard.budgetSamples),
        0,
      );
      options.onProgress(clock.now(), budget > 0 ? trained / budget : 0);
    }
    // A macrotask between events: Ctrl-C is heard within a unit, not at the end of the run.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const final = await core.done;
  const wallMs = clock.now();
  for (const [id, from] of training) busy(id, from, wallMs, false);
  const points = curve.finish(wallMs, final.hardTestAcc);
  const result = summarize(store, {
    volunteers: mix.volunteers,
    hardTestAcc: final.hardTestAcc,
    wallMs,
    crowd: crowdTime(timeline, wallMs),
    curve: points,
    timeToAcc: timeToAccuracy(points, options.targets),
    counts,
    ...(mix.cheaters > 0 ? { cheats } : {}),
    peakInFlight,
    realSeconds: (performance.now() - started) / 1000,
    blobBytes: { peak: peakBlobBytes, final: blobs.stats().bytes },
  });
  store.close();
  return result;
}
