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

/** Saving what a unit has trained so far, so a worker that dies mid-unit can hand it in later. */
export interface UnitCheckpointing {
  /** At most one save per this many ms (by `now`). */
  readonly everyMs: number;
  readonly now: () => number;
  readonly save: (partial: UnitResult) => Promise<void>;
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
  hooks: TrainHooks & { readonly checkpoint?: UnitCheckpointing } = {},
  window: ScheduleWindow = WHOLE_RUN,
  path?: PathContext,
): Promise<UnitResult> {
  const model = new TrainableFFF(base);
  const trainablePath = path && new TrainablePath(path);
  const resultSoFar = async (
    stats: Pick<UnitResult, 'samples' | 'seconds' | 'finalLoss' | 'stopped'>,
  ): Promise<UnitResult> => {
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
      ...stats,
    };
  };
  try {
    const built = buildRecipe({ ...recipe, balance: 0, frozenLevels: 0 }, window);
    const stats = await trainFFF(model, data, built, withCheckpoints(hooks, resultSoFar), trainablePath);
    // Awaited here: the model is disposed in `finally`.
    return await resultSoFar({
      samples: stats.samplesSeen,
      seconds: stats.seconds,
      finalLoss: stats.finalLoss,
      stopped: stats.stopped,
    });
  } finally {
    model.dispose();
    trainablePath?.dispose();
  }
}

function withCheckpoints(
  hooks: TrainHooks & { readonly checkpoint?: UnitCheckpointing },
  resultSoFar: (
    stats: Pick<UnitResult, 'samples' | 'seconds' | 'finalLoss' | 'stopped'>,
  ) => Promise<UnitResult>,
): TrainHooks {
  const { checkpoint } = hooks;
  if (checkpoint === undefined) return hooks;
  const started = checkpoint.now();
  let lastSaved = started;
  let lastLoss = 0;
  return {
    ...hooks,
    onStep: (report) => {
      lastLoss = report.loss;
      hooks.onStep?.(report);
    },
    betweenSteps: async (progress) => {
      await hooks.betweenSteps?.(progress);
      const now = checkpoint.now();
      if (now - lastSaved < checkpoint.everyMs) return;
      lastSaved = now;
      const seconds = (now - started) / 1000;
      const finalLoss = Number.isFinite(lastLoss) ? lastLoss : 0;
      await checkpoint.save(
        await resultSoFar({ samples: progress.samplesSeen, seconds, finalLoss, stopped: true }),
      );
    },
  };
}
