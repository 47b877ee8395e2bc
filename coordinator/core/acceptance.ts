/**
 * Every rule a result must pass before its delta touches the model, in the order they run.
 * Lease rules refuse the upload without recording anything (the sender does not hold the
 * unit); delta rules record a rejection under the rule's name and reissue the unit.
 */
import type { ErrorCode } from '../../proto/errors.ts';
import type { ResultMetrics } from '../../proto/messages.ts';
import type { PathNodes } from '../../shared/fff/path-model.ts';
import { decodeUnitDelta } from '../../shared/fff/unit-delta.ts';
import { hardCrossEntropy } from '../../shared/fff/hard-loss.ts';
import type { FFFWeights } from '../../shared/fff/weights.ts';
import type { TrainingJob } from '../job/training-job.ts';
import type { Shard, Unit } from '../store/store.ts';
import {
  changedLeafShare,
  deltaNorm,
  nonFiniteValue,
  relativeDistance,
  shapeMismatch,
} from './delta-check.ts';

import { subtractWeights } from '../../shared/fff/local-training.ts';
import type { OuterState } from '../merge/outer-state.ts';
import type { DeltaEvidence } from '../credit/credit-history.ts';
import { ownWorkFault } from '../credit/own-work.ts';

/** Below this share of changed leaf parameters a delta shows no training (see changedLeafShare). */
const MIN_CHANGED_LEAF_SHARE = 0.02;
/** Units of fewer minibatches than this are too small to show work (see shows-work). */
const MIN_STEPS_FOR_WORK_RULES = 1;

export interface Submission {
  readonly unitId: string;
  readonly workerId: string;
  readonly leaseToken: string;
  readonly body: Uint8Array;
  readonly metrics: ResultMetrics;
}

/** What the rules see. Each rule may fill in what later rules need. */
export interface Candidate {
  readonly submission: Submission;
  readonly now: number;
  readonly unit: Unit | undefined;
  readonly shard: Shard | undefined;
  delta?: FFFWeights;
  /** Slow top: the delta of the path nodes above the subtree. */
  path?: PathNodes;
  staleness?: number;
  norm?: number;
  merged?: { weights: FFFWeights; state: OuterState; valLoss: number; measure: number; phase: string };
  /** Quorum mode: the first worker's delta for this unit, held until this one agrees. */
  held?: FFFWeights;
  /** Samples the result is credited with, and its share of the unit (below 1 when partial). */
  samplesDone?: { samples: number; fraction: number };
  /** The delta's sketch and size, remembered for the shard's credit history once merged. */
  evidence?: DeltaEvidence;
  /** Relative L2 distance between this delta and the held one. */
  quorumDistance?: number;
}

export interface AcceptanceRule {
  readonly name: string;
  readonly stage: 'lease' | 'delta';
  readonly code: ErrorCode;
  /** Why the candidate fails this rule, or undefined when it passes. */
  check(candidate: Candidate, job: TrainingJob): string | undefined;
}

const unitOf = (c: Candidate): Unit => c.unit!;
const shardOf = (c: Candidate): Shard => c.shard!;
const deltaOf = (c: Candidate): FFFWeights => c.delta!;

export const ACCEPTANCE_RULES: readonly AcceptanceRule[] = [
  {
    name: 'unit-exists',
    stage: 'lease',
    code: 'UNKNOWN_UNIT',
    check: (c) => (c.unit === undefined ? `no unit ${c.submission.unitId}` : undefined),
  },
  {
    name: 'job-running',
    stage: 'lease',
    code: 'LEASE_LOST',
    // The owner's goal may end a job while units are still out: their results merge no more.
    check: (_c, job) => (job.phase === 'done' ? 'the job has ended' : undefined),
  },
  {
    name: 'leased-to-sender',
    stage: 'lease',
    code: 'LEASE_LOST',
    check: (c) =>
      unitOf(c).workerId !== c.submission.workerId
        ? `unit ${c.submission.unitId} is not leased to this worker`
        : undefined,
  },
  {
    name: 'lease-held',
    stage: 'lease',
    code: 'LEASE_LOST',
    check: (c) => {
      const unit = unitOf(c);
      const held =
        unit.state === 'leased' &&
        unit.leaseToken === c.submission.leaseToken &&
        (unit.deadlineMs ?? 0) >= c.now;
      return held ? undefined : `the lease on unit ${unit.id} is no longer held`;
    },
  },
  {
    name: 'decodes',
    stage: 'delta',
    code: 'DELTA_INVALID',
    check: (c, job) => {
      try {
        const source = `result for ${c.submission.unitId}`;
        const decoded = decodeUnitDelta(c.submission.body, source, job.top.levelsFor(unitOf(c)));
        c.delta = decoded.delta;
        if (decoded.path !== undefined) c.path = decoded.path;
        return undefined;
      } catch (error) {
        return (error as Error).message;
      }
    },
  },
  {
    name: 'shape-matches',
    stage: 'delta',
    code: 'DELTA_INVALID',
    check: (c, job) => shapeMismatch(deltaOf(c), job.subtreeShape),
  },
  { name: 'values-finite', stage: 'delta', code: 'DELTA_INVALID', check: (c) => nonFiniteValue(deltaOf(c)) },
  {
    name: 'norm-bounded',
    stage: 'delta',
    code: 'DELTA_REJECTED',
    check: (c, job) => {
      const norm = (c.norm ??= deltaNorm(deltaOf(c)));
      const bound = job.config.validation.max_delta_norm;
      return norm > bound ? `norm ${norm.toPrecision(4)} exceeds the bound ${bound}` : undefined;
    },
  },
  {
    name: 'path-finite',
    stage: 'delta',
    code: 'DELTA_INVALID',
    check: (c) =>
      c.path !== undefined && ![...c.path.weight, ...c.path.bias].every(Number.isFinite)
        ? 'the path delta holds a value that is not finite'
        : undefined,
  },
  {
    name: 'path-norm-bounded',
    stage: 'delta',
    code: 'DELTA_REJECTED',
    check: (c, job) => {
      if (c.path === undefined) return undefined;
      let squares = 0;
      for (const values of [c.path.weight, c.path.bias]) for (const v of values) squares += v * v;
      const norm = Math.sqrt(squares);
      const bound = job.config.top.max_norm;
      return norm > bound ? `path delta norm ${norm.toPrecision(4)} exceeds the bound ${bound}` : undefined;
    },
  },
  {
    name: 'shows-work',
    stage: 'delta',
    code: 'DELTA_REJECTED',
    check: (c, job) => {
      // A unit whose window is under one minibatch (the tail of a shard the top routes few
      // samples to, after a re-route) trains no whole step: its honest delta is nothing. It is
      // held to neither rule and earns its few samples.
      const steps = job.schedule.unitSamples(shardOf(c), unitOf(c)) / job.schedule.batchOf(shardOf(c));
      if (steps < MIN_STEPS_FOR_WORK_RULES) return undefined;
      const norm = (c.norm ??= deltaNorm(deltaOf(c)));
      const floor = job.config.validation.min_delta_norm;
      if (norm < floor) return `norm ${norm.toPrecision(4)} is below ${floor}: the delta shows no training`;
      const share = changedLeafShare(deltaOf(c));
      return share < MIN_CHANGED_LEAF_SHARE
        ? `changes ${(share * 100).toPrecision(2)}% of the leaf parameters (at least ${MIN_CHANGED_LEAF_SHARE * 100}%): the delta shows no training`
        : undefined;
    },
  },
  {
    name: 'claim-matches-unit',
    stage: 'delta',
    code: 'DELTA_REJECTED',
    // A worker that had to stop may send what it has (at least a minibatch); phase
    // boundaries fall on whole steps, so a claim may differ from the unit's by one minibatch.
    check: (c, job) => {
      const whole = job.schedule.unitSamples(shardOf(c), unitOf(c));
      const slack = job.schedule.batchOf(shardOf(c));
      const claimed = c.submission.metrics.samples;
      const partialAllowed = job.config.validation.quorum === 1;
      if (Number.isInteger(claimed) && claimed <= whole + slack) {
        if (claimed >= whole - slack) {
          c.samplesDone = { samples: whole, fraction: 1 };
          return undefined;
        }
        if (partialAllowed && claimed >= Math.min(slack, whole)) {
          c.samplesDone = { samples: claimed, fraction: claimed / whole };
          return undefined;
        }
      }
      return `claims ${claimed} samples; the unit trains ${whole}${partialAllowed ? ` (or, stopped early, at least ${Math.min(slack, whole)})` : ''}`;
    },
  },
  {
    name: 'own-work',
    stage: 'delta',
    code: 'DELTA_REJECTED',
    check: (c, job) => {
      const shard = shardOf(c);
      const evidence = (c.evidence = job.credit.evidence(deltaOf(c)));
      const current = { blob: shard.weightsBlob, weights: job.models.subtree(shard) };
      return ownWorkFault(job.credit.likeness(shard.id, current, evidence));
    },
  },
  {
    name: 'quorum-agrees',
    stage: 'delta',
    code: 'DELTA_REJECTED',
    check: (c, job) => {
      if (c.held === undefined) return undefined;
      const distance = (c.quorumDistance = relativeDistance(deltaOf(c), c.held));
      const tolerance = job.config.validation.quorum_tolerance;
      return distance > tolerance
        ? `differs from the other worker's result for this unit by ${distance.toPrecision(3)} (tolerance ${tolerance})`
        : undefined;
    },
  },
  {
    name: 'not-too-stale',
    stage: 'delta',
    code: 'DELTA_REJECTED',
    check: (c, job) => {
      c.staleness = shardOf(c).version - unitOf(c).baseVersion;
      const limit = job.config.outer.max_staleness;
      return c.staleness > limit ? `stale: ${c.staleness} versions behind (limit ${limit})` : undefined;
    },
  },
  {
    name: 'validation-loss',
    stage: 'delta',
    code: 'DELTA_REJECTED',
    check: (c, job) => {
      const shard = shardOf(c);
      const unit = unitOf(c);
      const { validation } = job.config;
      const current = job.models.subtree(shard);
      const staleness = c.staleness ?? 0;
      const proposal = job.merge.propose({
        current,
        state: job.models.outerState(shard),
        delta: deltaOf(c),
        ...(staleness > 0 && unit.baseBlob !== null
          ? { moved: subtractWeights(current, job.models.weightsOfBlob(unit.baseBlob)) }
          : {}),
        staleness,
        peers: 1 / (unit.share ?? 1),
        trained: c.samplesDone?.fraction ?? 1,
      });
      // Judged by the objective of the unit's phase, against the best merged in that phase
      // (so that accepted deltas cannot ratchet it up), or the current model's at a new phase.
      const phase = job.schedule.validationPhase(unit);
      const judged = job.models.validationMeasure(proposal.judged, shard, phase);
      const reference =
        shard.bestPhase === phase.name && shard.bestValLoss != null
          ? Math.min(shard.bestValLoss, job.models.currentMeasure(shard, phase))
          : job.models.currentMeasure(shard, phase);
      if (!Number.isFinite(judged) || judged > reference * (1 + validation.tolerance) + 1e-6)
        return `validation loss (${phase.name} phase) ${judged.toFixed(4)} is worse than the shard's best ${reference.toFixed(4)} beyond the tolerance ${validation.tolerance}`;
      const { weights } = proposal;
      const measure =
        weights === proposal.judged
          ? judged
          : weights === current
            ? job.models.currentMeasure(shard, phase)
            : job.models.validationMeasure(weights, shard, phase);
      const valLoss =
        phase.routing === 'hard' ? measure : hardCrossEntropy(weights, job.models.validationSet(shard));
      c.merged = { weights, state: proposal.state, valLoss, measure, phase: phase.name };
      return undefined;
    },
  },
];

export type Verdict =
  { readonly ok: true } | { readonly ok: false; readonly rule: AcceptanceRule; readonly reason: string };

const MAX_REASON_CHARS = 1024;

/** Runs the rules of one stage in order; the first that fails decides. */
export function judge(candidate: Candidate, job: TrainingJob, stage: AcceptanceRule['stage']): Verdict {
  for (const rule of ACCEPTANCE_RULES) {
    if (rule.stage !== stage) continue;
    const reason = rule.check(candidate, job);
    if (reason !== undefined) return { ok: false, rule, reason: reason.slice(0, MAX_REASON_CHARS) };
  }
  return { ok: true };
}
