/**
 * What a simulated cheater submits instead of its own work, in turn: a copy of the shard's
 * last merged delta, the same scaled by 1.5, the move between the weights it was served and
 * the shard's current ones, a token delta (1.5% of the leaf parameters moved by a hair),
 * and the negation of an honestly trained delta (plausible and harmful).
 */
import { decodeUnitDelta } from '../../shared/fff/unit-delta.ts';
import { subtractWeights } from '../../shared/fff/local-training.ts';
import { type FFFWeights, TENSOR_NAMES, zeroWeights } from '../../shared/fff/weights.ts';
import type { Assign } from '../../proto/messages.ts';
import type { TrainingJob } from '../job/training-job.ts';
import type { BlobStore } from '../store/blob-store.ts';
import type { Store } from '../store/store.ts';

export const CHEATS = ['copy', 'scaled-copy', 'served-move', 'token', 'negated'] as const;
export type Cheat = (typeof CHEATS)[number];

export interface CheatContext {
  readonly job: TrainingJob;
  readonly store: Store;
  readonly blobs: BlobStore;
  readonly assign: Assign;
  /** The unit trained honestly (what the negation starts from). */
  readonly honest: () => Promise<FFFWeights>;
}

function scaled(delta: FFFWeights, factor: number): FFFWeights {
  const out = zeroWeights(delta.shape);
  for (const name of TENSOR_NAMES) delta.tensors[name].forEach((v, i) => (out.tensors[name][i] = v * factor));
  return out;
}

function tokenDelta(job: TrainingJob): FFFWeights {
  const delta = zeroWeights(job.subtreeShape);
  const values = delta.tensors['leaves.w1'];
  const changed = Math.max(1, Math.ceil(0.015 * values.length));
  const size = (2 * job.config.validation.min_delta_norm) / Math.sqrt(changed);
  const stride = Math.max(1, Math.floor(values.length / changed));
  for (let i = 0; i < changed; i++) values[i * stride] = i % 2 ? size : -size;
  return delta;
}

function lastMerged({ store, blobs, assign, job }: CheatContext): FFFWeights | undefined {
  const row = store
    .listResults()
    .filter((r) => r.shard === assign.shard && r.status === 'accepted' && r.deltaBlob !== null)
    .at(-1);
  // Merged deltas are collected once unused a while (BlobStore.collect): then there is nothing to copy.
  if (row === undefined || !blobs.has(row.deltaBlob!)) return undefined;
  const unit = store.getUnit(row.unitId);
  const levels = unit === undefined ? undefined : job.top.levelsFor(unit);
  return decodeUnitDelta(blobs.read(row.deltaBlob!), 'copy', levels).delta;
}

/** The delta a cheater of this kind submits for its unit. */
export async function cheatDelta(kind: Cheat, ctx: CheatContext): Promise<FFFWeights> {
  const { job, store, assign } = ctx;
  switch (kind) {
    case 'copy':
      return lastMerged(ctx) ?? tokenDelta(job);
    case 'scaled-copy': {
      const copy = lastMerged(ctx);
      return copy === undefined ? tokenDelta(job) : scaled(copy, 1.5);
    }
    case 'served-move': {
      const current = job.models.subtree(store.getShard(assign.shard)!);
      const move = subtractWeights(current, job.models.weightsOfBlob(assign.base_blob.sha256));
      const moved = TENSOR_NAMES.some((name) => move.tensors[name].some((v) => v !== 0));
      return moved ? move : (lastMerged(ctx) ?? tokenDelta(job));
    }
    case 'token':
      return tokenDelta(job);
    case 'negated':
      return scaled(await ctx.honest(), -1);
  }
}

/** A cheater's whole result: its delta (and a zero path under a slow top), claiming the whole unit. */
export async function cheatResult(kind: Cheat, ctx: CheatContext) {
  const { assign, job, store } = ctx;
  const delta = await cheatDelta(kind, ctx);
  const K = assign.top?.levels ?? 0;
  return {
    delta,
    ...(assign.top !== undefined
      ? { pathDelta: { weight: new Float32Array(K * assign.input_width), bias: new Float32Array(K) } }
      : {}),
    samples: job.schedule.unitSamples(store.getShard(assign.shard)!, store.getUnit(assign.unit_id)!),
    finalLoss: 1,
    kind,
  };
}
