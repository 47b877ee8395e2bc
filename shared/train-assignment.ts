/**
 * A work unit's training from its assignment: the one way the CLI worker, the browser tab,
 * the simulator and the tests train a unit. The assignment names the shard's schedule, this
 * unit's window of it and, with the slow top, the path above the subtree; the caller brings
 * the decoded base subtree and shard data, and its own hooks (progress, stop, checkpoints).
 */
import type { Assign } from '../proto/messages.ts';
import { type UnitCheckpointing, type UnitResult, trainUnit } from './fff/local-training.ts';
import type { PathContext } from './fff/path-model.ts';
import type { RecipeOptions, ScheduleWindow } from './fff/recipe.ts';
import { decodeSiblings, decodeTop, pathContext } from './fff/top-blob.ts';
import type { OptimizerCarry, TrainHooks, TrainingSet } from './fff/trainer.ts';
import type { FFFWeights } from './fff/weights.ts';

/** What `trainUnit` needs from an assignment: the shard's schedule and this unit's window of it. */
export function assignedRecipe(assign: Assign): {
  readonly options: Omit<RecipeOptions, 'balance' | 'frozenLevels'>;
  readonly window: ScheduleWindow;
} {
  const { recipe } = assign;
  return {
    options: {
      epochs: recipe.schedule.epochs,
      batchSize: recipe.batch,
      lr: recipe.lr,
      optimizer: recipe.optimizer,
      hardening: recipe.hardening,
      leak: recipe.leak,
      seed: recipe.seed,
    },
    window: { from: recipe.schedule.from, to: recipe.schedule.to },
  };
}

/**
 * Slow top: the path above the assigned subtree and each training sample's sibling outputs,
 * from the assignment's top and siblings blobs.
 */
export function assignedPath(
  assign: Assign,
  topBytes: Uint8Array,
  siblingsBytes: Uint8Array,
  samples: number,
): { readonly path: PathContext; readonly siblings: Float32Array } {
  const top = assign.top!;
  const decoded = decodeTop(topBytes, `top blob of ${assign.unit_id}`);
  if (decoded.levels !== top.levels || decoded.inputWidth !== assign.input_width)
    throw new RangeError(`top blob of ${assign.unit_id} does not match the assignment`);
  if (assign.shard >= 2 ** top.levels)
    throw new RangeError(`shard ${assign.shard} is not under ${top.levels} levels`);
  return {
    path: pathContext(decoded, assign.shard, top.balance),
    siblings: decodeSiblings(
      siblingsBytes,
      samples,
      top.levels * assign.output_width,
      `siblings blob of ${assign.unit_id}`,
    ),
  };
}

/** What a unit trains on: the shard's base subtree and samples, and the slow top's two blobs. */
export interface AssignmentInputs {
  readonly base: FFFWeights;
  readonly data: TrainingSet;
  readonly top?: { readonly blob: Uint8Array; readonly siblings: Uint8Array };
}

/** The optimizer steps the unit takes over its shard's samples. */
export const assignedSteps = (assign: Assign, samples: number): number =>
  Math.max(1, Math.round(assign.recipe.local_epochs * Math.ceil(samples / assign.recipe.batch)));

export async function trainAssignment(
  assign: Assign,
  inputs: AssignmentInputs,
  hooks: TrainHooks & { readonly checkpoint?: UnitCheckpointing } = {},
): Promise<UnitResult> {
  const { options, window } = assignedRecipe(assign);
  if (assign.top === undefined) return trainUnit(inputs.base, inputs.data, options, hooks, window);
  if (inputs.top === undefined)
    throw new RangeError(`unit ${assign.unit_id} trains its path: its top blobs are needed`);
  const along = assignedPath(assign, inputs.top.blob, inputs.top.siblings, inputs.data.n);
  return trainUnit(
    inputs.base,
    { ...inputs.data, siblings: along.siblings },
    options,
    hooks,
    window,
    along.path,
  );
}

/**
 * One volunteer's optimizer state, carried from a unit to its next unit of the same shard
 * (unless the unit asks for a fresh one): the moments resume only when nothing else was
 * merged into the shard in between.
 */
export class OptimizerCarrier {
  private carried: { shard: number; carry: OptimizerCarry; version?: number } | undefined;

  hooksFor(assign: Assign): Pick<TrainHooks, 'resumeOptimizer' | 'onOptimizerState'> {
    const previous = this.carried;
    return {
      ...(previous?.shard === assign.shard && assign.recipe.fresh_optimizer !== true
        ? { resumeOptimizer: { ...previous.carry, momentum: previous.version === assign.base_version } }
        : {}),
      onOptimizerState: (carry) => (this.carried = { shard: assign.shard, carry }),
    };
  }

  /** The unit's delta was merged into `version` of its shard. */
  merged(shard: number, version: number): void {
    if (this.carried?.shard === shard) this.carried.version = version;
  }
}
