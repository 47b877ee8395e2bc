import type { Assign } from '../proto/messages.ts';
import type { PathContext } from './fff/path-model.ts';
import type { RecipeOptions, ScheduleWindow } from './fff/recipe.ts';
import { decodeSiblings, decodeTop, pathContext } from './fff/top-blob.ts';

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
