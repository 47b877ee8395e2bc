import * as tf from '@tensorflow/tfjs';
import { createRng, shuffleInPlace } from '../random.ts';
import {
  type Routing,
  type TrainableFFF,
  balanceLoss,
  crossEntropy,
  decisionEntropy,
  forward,
} from './soft-model.ts';
import { type TrainablePath, pathForward } from './path-model.ts';
import type { TensorName } from './weights.ts';

/** One stretch of training with fixed settings. */
export interface Phase {
  readonly name: string;
  /** Passes over the data; may be fractional (a unit's window of a longer schedule). */
  readonly epochs: number;
  readonly routing: Routing;
  /** Weight h of the mean decision entropy. */
  readonly hardening: number;
  readonly lr: number;
  /** 'cosine' decays the rate to 10% over the phase. */
  readonly lrDecay: 'constant' | 'cosine';
  /** Which parameters the phase updates. */
  readonly train: 'all' | 'leaves';
  readonly leak: number;
  /** The part of the phase's rate schedule this run covers (a window of a longer run). */
  readonly lrWindow?: { readonly from: number; readonly to: number };
}

export interface Recipe {
  readonly batchSize: number;
  readonly optimizer: 'adam' | 'sgd';
  readonly phases: readonly Phase[];
  /** Weight of the routing-balance term at depth `balanceLevels` (0 = off). */
  readonly balance: number;
  readonly balanceLevels: number;
  readonly seed: number;
  /**
   * The central twin of a distributed run's top: from `fromEpoch` on, the top `levels` levels'
   * nodes move `rate` times as far as the optimizer moves them (0: frozen, below 1: slow).
   */
  readonly top?: { readonly levels: number; readonly fromEpoch: number; readonly rate: number };
}

export interface TrainingSet {
  readonly n: number;
  readonly inputWidth: number;
  readonly x: Float32Array;
  readonly y: Int32Array;
  /** With a path to train: each sample's cached sibling outputs [n, K * outputWidth]. */
  readonly siblings?: Float32Array;
}

export interface StepReport {
  readonly phase: string;
  readonly epoch: number;
  readonly totalEpochs: number;
  readonly stepInEpoch: number;
  readonly stepsPerEpoch: number;
  readonly samplesSeen: number;
  readonly loss: number;
}

/**
 * An optimizer's state (Adam's step count and moments) at the end of a run, in the order of
 * the phase's parameters: handed to the next run of the same phase on the same shard, it
 * continues where this one stopped instead of starting its moments from zero.
 */
export interface OptimizerCarry {
  readonly phase: string;
  /**
   * False when others' results were merged since this state's run: its momentum points where
   * the model has already gone, so only the step count and the second moments are resumed.
   */
  readonly momentum?: boolean;
  readonly slots: readonly {
    readonly name: string;
    readonly values: Float32Array;
    readonly shape: number[];
  }[];
}

export interface TrainHooks {
  /** Optimizer state to resume when the first phase is the one it was saved in. */
  readonly resumeOptimizer?: OptimizerCarry;
  /** Receives the optimizer's state at the end of the run (also when stopped). */
  readonly onOptimizerState?: (carry: OptimizerCarry) => void;
  /** Called every `reportEvery` steps (the loss read forces a sync, so not every step). */
  readonly onStep?: (report: StepReport) => void;
  readonly onEpochEnd?: (report: StepReport) => void | Promise<void>;
  readonly shouldStop?: () => boolean;
  readonly reportEvery?: number;
  /** Yield to the event loop every this many steps (0 = never). */
  readonly yieldEvery?: number;
  /** Awaited after every step: where a volunteer's CPU limit pauses training. */
  readonly betweenSteps?: (progress: { readonly samplesSeen: number }) => Promise<void>;
}

export interface TrainStats {
  readonly samplesSeen: number;
  readonly steps: number;
  readonly seconds: number;
  readonly samplesPerSecond: number;
  readonly finalLoss: number;
  readonly stopped: boolean;
}

const LEAF_TENSORS: readonly TensorName[] = ['leaves.w1', 'leaves.b1', 'leaves.w2', 'leaves.b2'];

/**
 * Adam's epsilon is fixed: tfjs would take the backend's, which WebGL reports as 1e-4 (its
 * float16 value) even where it computes in float32, and a unit would train differently there.
 */
const ADAM_EPSILON = 1e-7;

function makeOptimizer(kind: Recipe['optimizer'], lr: number): tf.Optimizer {
  return kind === 'adam' ? tf.train.adam(lr, 0.9, 0.999, ADAM_EPSILON) : tf.train.sgd(lr);
}

function setLearningRate(optimizer: tf.Optimizer, lr: number): void {
  (optimizer as unknown as { learningRate: number }).learningRate = lr;
}

function phaseRate(phase: Phase, progress: number): number {
  if (phase.lrDecay === 'constant') return phase.lr;
  return phase.lr * (0.1 + 0.45 * (1 + Math.cos(Math.PI * progress)));
}

/**
 * Samples a run of `epochs` passes (fractional: a slice of the last) over `n` samples sees:
 * whole steps, each pass ending in a short minibatch, as trainFFF counts them.
 */
export function samplesOfRun(epochs: number, n: number, batchSize: number): number {
  const stepsPerEpoch = Math.ceil(n / batchSize);
  const steps = Math.round(epochs * stepsPerEpoch);
  return Math.floor(steps / stepsPerEpoch) * n + Math.min(n, (steps % stepsPerEpoch) * batchSize);
}

// A browser has no setImmediate; its setTimeout(0) is the nearest yield there.
const yieldNow: (resume: () => void) => void = globalThis.setImmediate ?? ((resume) => setTimeout(resume, 0));
const nextTick = (): Promise<void> => new Promise((resolve) => yieldNow(resolve));

/** Trains `model` in place through the recipe's phases; returns throughput figures. */
export async function trainFFF(
  model: TrainableFFF,
  data: TrainingSet,
  recipe: Recipe,
  hooks: TrainHooks = {},
  path?: TrainablePath,
): Promise<TrainStats> {
  const siblingWidth = path ? (data.siblings?.length ?? -1) / Math.max(1, data.n) : 0;
  if (path && siblingWidth !== path.context.levels * model.shape.outputWidth)
    throw new RangeError("training a path needs every sample's sibling outputs");
  const sibBatch = new Float32Array(recipe.batchSize * siblingWidth);
  const { batchSize } = recipe;
  const rng = createRng(recipe.seed ^ 0x5eed);
  const order = Int32Array.from({ length: data.n }, (_, i) => i);
  const xBatch = new Float32Array(batchSize * data.inputWidth);
  const yBatch = new Int32Array(batchSize);
  const stepsPerEpoch = Math.ceil(data.n / batchSize);
  const totalEpochs = Math.ceil(recipe.phases.reduce((sum, p) => sum + p.epochs, 0) - 1e-9);
  const reportEvery = hooks.reportEvery ?? 20;
  const started = performance.now();
  let samplesSeen = 0;
  let steps = 0;
  let lastLoss = Number.NaN;
  // Phase boundaries fall on whole steps, rounded from the running sum of phase epochs, so
  // that phases of fractional epochs add up to whole passes over the data.
  let epochsBefore = 0;
  let report: StepReport | undefined;

  for (const [index, phase] of recipe.phases.entries()) {
    const optimizer = makeOptimizer(recipe.optimizer, phase.lr);
    const resume = hooks.resumeOptimizer;
    if (index === 0 && resume?.phase === phase.name && resume.slots.length > 0) {
      // Stale momentum points where the model has already been moved: it starts from zero.
      const stale = resume.momentum === false;
      const named = resume.slots.map((slot) => ({
        name: slot.name,
        tensor: stale && slot.name.endsWith('/m') ? tf.zeros(slot.shape) : tf.tensor(slot.values, slot.shape),
      }));
      await optimizer.setWeights(named);
      named.forEach(({ tensor }) => tensor.dispose());
    }
    const last = index === recipe.phases.length - 1;
    const names = phase.train === 'all' ? (Object.keys(model.vars) as TensorName[]) : LEAF_TENSORS;
    const pathOn = path !== undefined && phase.routing === 'soft' && phase.train === 'all';
    const varList = names.map((name) => model.vars[name]);
    if (pathOn) varList.push(path.weight, path.bias);
    const balanceOn =
      recipe.balance > 0 && recipe.balanceLevels > 0 && phase.routing === 'soft' && phase.train === 'all';
    const phaseEnd = Math.round((epochsBefore + phase.epochs) * stepsPerEpoch);
    epochsBefore += phase.epochs;
    const phaseSteps = Math.max(1, phaseEnd - steps);
    const lrFrom = phase.lrWindow?.from ?? 0;
    const lrTo = phase.lrWindow?.to ?? 1;

    for (let phaseStep = 0; steps < phaseEnd; phaseStep++) {
      if (hooks.shouldStop?.()) {
        await saveState(optimizer, phase.name);
        optimizer.dispose();
        return summary(true);
      }
      const step = steps % stepsPerEpoch;
      const epoch = Math.floor(steps / stepsPerEpoch);
      if (step === 0) shuffleInPlace(order, rng);
      const begin = step * batchSize;
      const size = Math.min(batchSize, data.n - begin);
      for (let r = 0; r < size; r++) {
        const row = order[begin + r]!;
        xBatch.set(data.x.subarray(row * data.inputWidth, (row + 1) * data.inputWidth), r * data.inputWidth);
        yBatch[r] = data.y[row]!;
        if (pathOn)
          sibBatch.set(
            data.siblings!.subarray(row * siblingWidth, (row + 1) * siblingWidth),
            r * siblingWidth,
          );
      }
      setLearningRate(optimizer, phaseRate(phase, lrFrom + ((lrTo - lrFrom) * phaseStep) / phaseSteps));
      const leakSeed = Math.floor(rng() * 2 ** 31);
      const lastOfEpoch = step === stepsPerEpoch - 1;
      const wantReport = (steps + 1) % reportEvery === 0 || lastOfEpoch;
      const restrained =
        recipe.top !== undefined && phase.train === 'all' && steps >= recipe.top.fromEpoch * stepsPerEpoch;
      const topBefore = restrained ? topRows(model, recipe.top!.levels) : undefined;
      const reported: { cost?: tf.Tensor } = {};
      tf.tidy(() => {
        const x = tf.tensor2d(xBatch.subarray(0, size * data.inputWidth), [size, data.inputWidth]);
        const y = tf.tensor1d(yBatch.subarray(0, size), 'int32');
        optimizer.minimize(
          () => {
            const out = forward(model, x, {
              routing: phase.routing,
              leak: phase.leak,
              leakSeed,
              ...(balanceOn ? { balanceLevels: recipe.balanceLevels } : {}),
            });
            let logits = out.logits;
            let nodeLogits = out.nodeLogits;
            let pathBalance: tf.Scalar | undefined;
            if (pathOn) {
              const siblings = tf.tensor2d(sibBatch.subarray(0, size * siblingWidth), [size, siblingWidth]);
              const along = pathForward(path, x, logits, siblings);
              logits = along.logits;
              nodeLogits = tf.concat([nodeLogits, along.pathLogits], 1);
              if (path.context.balance > 0)
                pathBalance = tf.mul(path.context.balance, along.balance) as tf.Scalar;
            }
            let loss = crossEntropy(logits, y);
            // Reported loss = the data term: the regularizers (path balance) can be negative.
            if (wantReport) reported.cost = tf.keep(loss.clone());
            if (phase.hardening > 0 && phase.train === 'all') {
              loss = tf.add(loss, tf.mul(phase.hardening, decisionEntropy(nodeLogits)));
            }
            if (pathBalance !== undefined) loss = tf.add(loss, pathBalance);
            if (out.levelMass !== undefined)
              loss = tf.add(loss, tf.mul(recipe.balance, balanceLoss(out.levelMass)));
            return loss as tf.Scalar;
          },
          false,
          varList,
        );
      });
      if (topBefore !== undefined) restrainTop(model, recipe.top!.levels, recipe.top!.rate, topBefore);
      steps++;
      samplesSeen += size;
      if (reported.cost) {
        lastLoss = (await reported.cost.data())[0]!;
        reported.cost.dispose();
        report = {
          phase: phase.name,
          epoch,
          totalEpochs,
          stepInEpoch: step + 1,
          stepsPerEpoch,
          samplesSeen,
          loss: lastLoss,
        };
        hooks.onStep?.(report);
      }
      if (hooks.yieldEvery && steps % hooks.yieldEvery === 0) await nextTick();
      await hooks.betweenSteps?.({ samplesSeen });
      if (lastOfEpoch && report) await hooks.onEpochEnd?.(report);
    }
    if (last) await saveState(optimizer, phase.name);
    optimizer.dispose();
  }
  return summary(false);

  async function saveState(optimizer: tf.Optimizer, phase: string): Promise<void> {
    if (hooks.onOptimizerState === undefined) return;
    const named = await optimizer.getWeights();
    const values = await Promise.all(named.map(({ tensor }) => tensor.data()));
    const slots = named.map(({ name, tensor }, i) => ({
      name,
      values: Float32Array.from(values[i] as Float32Array),
      shape: tensor.shape,
    }));
    // The step count is a fresh tensor; the moments are the optimizer's own (freed with it).
    named[0]?.tensor.dispose();
    hooks.onOptimizerState(slots.length > 0 ? { phase, slots } : { phase, slots: [] });
  }

  function summary(stopped: boolean): TrainStats {
    const seconds = (performance.now() - started) / 1000;
    return {
      samplesSeen,
      steps,
      seconds,
      samplesPerSecond: samplesSeen / Math.max(seconds, 1e-9),
      finalLoss: lastLoss,
      stopped,
    };
  }
}

/** Copies of the top `levels` levels' node rows. */
function topRows(model: TrainableFFF, levels: number): [tf.Tensor, tf.Tensor] {
  const nodes = 2 ** levels - 1;
  return tf.tidy(() => [
    tf.slice(model.vars['nodes.weight'], [0, 0], [nodes, -1]),
    tf.slice(model.vars['nodes.bias'], [0], [nodes]),
  ]);
}

/** Moves the top rows back to `before` + `rate` x (the step just taken); frees `before`. */
function restrainTop(
  model: TrainableFFF,
  levels: number,
  rate: number,
  before: [tf.Tensor, tf.Tensor],
): void {
  const nodes = 2 ** levels - 1;
  tf.tidy(() => {
    (['nodes.weight', 'nodes.bias'] as const).forEach((name, i) => {
      const variable = model.vars[name];
      const old = before[i]!;
      const moved = tf.slice(
        variable,
        variable.rank === 2 ? [0, 0] : [0],
        variable.rank === 2 ? [nodes, -1] : [nodes],
      );
      const rest = tf.slice(
        variable,
        variable.rank === 2 ? [nodes, 0] : [nodes],
        variable.rank === 2 ? [-1, -1] : [-1],
      );
      variable.assign(tf.concat([tf.add(old, tf.mul(rate, tf.sub(moved, old))), rest], 0));
    });
  });
  before.forEach((t) => t.dispose());
}
