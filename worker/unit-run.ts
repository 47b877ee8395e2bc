/**
 * One assigned unit, on the volunteer's side: fetch and check its blobs, train it (with
 * heartbeats, and checkpoints where the worker may die mid-unit), then upload the result,
 * send what was trained as a partial result, or hand the unit back.
 */
import { ProtocolError } from '../proto/errors.ts';
import type { Assign, Welcome } from '../proto/messages.ts';
import { decodeFFF } from '../shared/checkpoint/fff-checkpoint.ts';
import { decodeShardData } from '../shared/data/shard-blob.ts';
import type { UnitResult } from '../shared/fff/local-training.ts';
import type { StepReport } from '../shared/fff/trainer.ts';
import { encodeUnitDelta } from '../shared/fff/unit-delta.ts';
import { sameShape } from '../shared/fff/weights.ts';
import {
  type AssignmentInputs,
  type OptimizerCarrier,
  assignedSteps,
  trainAssignment,
} from '../shared/train-assignment.ts';
import { reportUnit } from './unit-report.ts';
import { type UploadAnswer, type VolunteerStanding, uploadResult } from './upload-result.ts';
import type { BlobSource, ControlSocket, Pacing, UnitCheckpoints, VolunteerLog } from './volunteer-ports.ts';

/** The volunteer's options a unit's run uses. */
export interface UnitOptions {
  readonly token?: string;
  readonly log: VolunteerLog;
  readonly blobs: BlobSource;
  /** Aborting finishes nothing new: the current unit is handed in or back and the worker exits. */
  readonly signal?: AbortSignal;
  /** The volunteer's limits: a share of the CPU, or only while the machine is idle. */
  readonly pacing?: Pacing;
  /** Where a worker that may die mid-unit saves its progress for a later hand-in (a tab). */
  readonly checkpoints?: UnitCheckpoints;
  readonly onUnitProgress?: (unit: Assign, report: StepReport, totalSteps: number) => void;
  /** Training of the unit is over (finished, stopped or cancelled). */
  readonly onUnitEnd?: (unit: Assign) => void;
  readonly onResult?: (
    unit: Assign,
    verdict: 'accepted' | 'rejected' | 'lost',
    samples: number,
    standing?: VolunteerStanding,
  ) => void;
}

/** What a unit's run needs beyond the unit: the volunteer's options, who it is, and its optimizer. */
export interface UnitContext {
  readonly options: UnitOptions;
  readonly workerId: string;
  /** http(s)://HOST:PORT, for uploads. */
  readonly base: string;
  readonly carrier: OptimizerCarrier;
}

export type UnitOutcome =
  | { readonly end: 'cancelled' | 'handed-back' }
  | {
      readonly end: 'sent';
      readonly answer: UploadAnswer;
      readonly samples: number;
      readonly partial: boolean;
    };

/** The unit's base subtree (of the assigned shape), the shard's samples and the top's blobs. */
async function fetchInputs(blobs: BlobSource, assign: Assign): Promise<AssignmentInputs> {
  const base = decodeFFF(await blobs.get(assign.base_blob), `base blob of ${assign.unit_id}`);
  const expected = {
    depth: assign.subtree_depth,
    leafWidth: assign.leaf_width,
    inputWidth: assign.input_width,
    outputWidth: assign.output_width,
    activation: assign.activation,
  };
  if (!sameShape(base.shape, expected))
    throw new ProtocolError('BAD_MESSAGE', `base blob of ${assign.unit_id} does not have the assigned shape`);
  const data = decodeShardData(await blobs.get(assign.data_blob, 'data'), `data blob of ${assign.unit_id}`);
  if (assign.top === undefined) return { base, data };
  const top = { blob: await blobs.get(assign.top.blob), siblings: await blobs.get(assign.top.siblings_blob) };
  return { base, data, top };
}

export async function runUnit(
  context: UnitContext,
  connection: ControlSocket,
  welcome: Welcome,
  assign: Assign,
): Promise<UnitOutcome> {
  const { options, workerId } = context;
  const { log, signal, checkpoints, pacing } = options;
  const unitLog = log.child({ unit: assign.unit_id, shard: assign.shard });
  const inputs = await fetchInputs(options.blobs, assign);
  const totalSteps = assignedSteps(assign, inputs.data.n);
  let cancelled: string | undefined;
  connection.onCancel = (unitId, reason) => {
    if (unitId === assign.unit_id) cancelled = reason;
  };
  let last: StepReport | undefined;
  let stepsDone = 0;
  let savedSamples = 0;
  const beat = (): void =>
    connection.send({
      type: 'heartbeat',
      unit_id: assign.unit_id,
      lease_token: assign.lease_token,
      step: Math.min(stepsDone, totalSteps),
      total_steps: totalSteps,
      ...(last !== undefined && Number.isFinite(last.loss) ? { loss: last.loss } : {}),
      ...(savedSamples > 0 ? { saved_samples: savedSamples } : {}),
    });
  const heartbeat = setInterval(beat, welcome.heartbeat_ms);
  const epochs = Number(assign.recipe.local_epochs.toFixed(2));
  const { part, retry } = assign.lineage;
  unitLog.info(
    {
      samples: inputs.data.n,
      epochs,
      batch: assign.recipe.batch,
      ...(part === undefined ? {} : { part_of: assign.lineage.origin }),
      ...(retry === 0 ? {} : { retry }),
    },
    'training unit',
  );
  const save = async (partial: UnitResult): Promise<void> => {
    if (checkpoints === undefined || partial.samples < assign.recipe.batch) return;
    await checkpoints.save({
      assign,
      workerId,
      body: encodeUnitDelta(partial.delta, partial.pathDelta),
      metrics: metricsOf(partial),
    });
    savedSamples = partial.samples;
    beat();
  };
  let result: UnitResult;
  try {
    result = await trainAssignment(assign, inputs, {
      yieldEvery: 1,
      reportEvery: 10,
      onStep: (report) => {
        last = report;
        stepsDone = report.epoch * report.stepsPerEpoch + report.stepInEpoch;
        options.onUnitProgress?.(assign, report, totalSteps);
      },
      shouldStop: () => cancelled !== undefined || signal?.aborted === true || pacing?.handIn === true,
      ...(pacing !== undefined ? { betweenSteps: () => pacing.betweenSteps() } : {}),
      ...context.carrier.hooksFor(assign),
      ...(checkpoints !== undefined
        ? { checkpoint: { everyMs: checkpoints.everyMs, now: Date.now, save } }
        : {}),
    });
  } finally {
    clearInterval(heartbeat);
    connection.onCancel = () => undefined;
    options.onUnitEnd?.(assign);
  }

  if (cancelled !== undefined) {
    await checkpoints?.clear();
    unitLog.warn({ reason: cancelled }, 'unit cancelled by the coordinator');
    return { end: 'cancelled' };
  }
  // Stopping after a minibatch or more: what was trained goes up as a partial result.
  const handedIn = signal?.aborted === true || pacing?.handIn === true;
  const partial = result.stopped && result.samples >= assign.recipe.batch && handedIn;
  if (result.stopped && !partial) {
    connection.send({
      type: 'release',
      unit_id: assign.unit_id,
      lease_token: assign.lease_token,
      reason: 'worker stopping',
    });
    await checkpoints?.clear();
    unitLog.info('unit handed back');
    return { end: 'handed-back' };
  }
  const answer = await uploadResult({
    base: context.base,
    ...(options.token !== undefined ? { token: options.token } : {}),
    workerId,
    assign,
    body: encodeUnitDelta(result.delta, result.pathDelta),
    metrics: metricsOf(result),
    log,
    ...(signal ? { signal } : {}),
  });
  // Kept until the answer: a tab that dies during the upload hands in the checkpoint next time.
  await checkpoints?.clear();
  if (answer.version !== undefined) context.carrier.merged(assign.shard, answer.version);
  options.onResult?.(assign, answer.status, result.samples, answer.standing);
  reportUnit(
    unitLog,
    answer,
    result,
    partial ? { done: Math.min(stepsDone, totalSteps), of: totalSteps } : undefined,
  );
  return { end: 'sent', answer, samples: result.samples, partial };
}

const metricsOf = (result: UnitResult) => ({
  train_loss: Number.isFinite(result.finalLoss) ? result.finalLoss : 0,
  samples: result.samples,
  seconds: result.seconds,
});
