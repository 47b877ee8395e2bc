import type { Assign } from '../proto/messages.ts';
import type { RecipeOptions, ScheduleWindow } from './fff/recipe.ts';

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
