import { type PathContext, type PathNodes, TrainablePath } from './path-model.ts';
import { type RecipeOptions, type ScheduleWindow, WHOLE_RUN, buildRecipe } from './recipe.ts';
import { TrainableFFF } from './soft-model.ts';
import { type TrainHooks, type TrainingSet, trainFFF } from './trainer.ts';
import { type FFFWeights, TENSOR_NAMES, cloneWeights, sameShape } from './weights.ts';

export interface UnitResult {
  /** local - base, in the checkpoint layout of the subtree. */
  readonly delta: FFFWeights;
  /** The path nodes' delta, when the unit trained its path (slow top). */
  readonly pathDelta?: PathNodes;
  readonly samples: number;
  readonly seconds: number;
  readonly finalLoss: number;
  readonly stopped: boolean;
}

export function subtractWeights(a: FFFWeights, b: FFFWeights): FFFWeights {
  if (!sameShape(a.shape, b.shape)) throw new RangeError('cannot subtract weights of different shapes');
  const out = cloneWeights(a);
  for (const name of TENSOR_NAMES) {
    const target = out.tensors[name];
    const minus = b.tensors[name];
    for (let i = 0; i < target.length; i++) target[i] = target[i]! - minus[i]!;
  }
  return out;
}

/**
 * A work unit's training, as a worker runs it: start from the shard's base subtree, train
 * on the shard's samples with the unit's window of the shard's schedule (`recipe.epochs`
 * are the whole schedule's), return the delta to send back.
 * No balance term: inside a shard there is nothing left to route between shards.
 */
export async function trainUnit(
  base: FFFWeights,
  data: TrainingSet,
  recipe: Omit<RecipeOptions, 'balance' | 'frozenLevels'>,
  hooks: TrainHooks = {},
  window: ScheduleWindow = WHOLE_RUN,
  path?: PathContext,
): Promise<UnitResult> {
  const model = new TrainableFFF(base);
  const trainablePath = path && new TrainablePath(path);
  try {
    const built = buildRecipe({ ...recipe, balance: 0, frozenLevels: 0 }, window);
    const stats = await trainFFF(model, data, built, hooks, trainablePath);
    const trained = await trainablePath?.readNodes();
    return {
      delta: subtractWeights(await model.readWeights(), base),
      ...(trained && path
        ? {
            pathDelta: {
              weight: trained.weight.map((v, i) => v - path.weight[i]!),
              bias: trained.bias.map((v, i) => v - path.bias[i]!),
            },
          }
        : {}),
      samples: stats.samplesSeen,
      seconds: stats.seconds,
      finalLoss: stats.finalLoss,
      stopped: stats.stopped,
    };
  } finally {
    model.dispose();
    trainablePath?.dispose();
  }
}
