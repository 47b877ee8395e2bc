/**
 * What a tab's unit checkpoints cost its training: the same unit of the default job's
 * subtree shape trained without checkpoints (the baseline) and saving one every `everyMs`,
 * on the active backend. The save here encodes the delta and keeps it in memory; a tab
 * then writes those bytes to IndexedDB (not measured here).
 */
import { initWeights } from '../shared/fff/init.ts';
import { trainUnit } from '../shared/fff/local-training.ts';
import { encodeUnitDelta } from '../shared/fff/unit-delta.ts';
import { createRng } from '../shared/random.ts';

interface Run {
  readonly samplesPerS: number;
  readonly seconds: number;
}

export interface UnitCheckpointBench {
  readonly depth: number;
  readonly leaf: number;
  readonly every_ms: number;
  readonly baseline_samples_per_s: number;
  readonly checkpointed_samples_per_s: number;
  readonly ratio: number;
  readonly saves: number;
  readonly save_ms_mean: number;
  readonly delta_mb: number;
  /** The share of training time a save every 5 s (the tab's cadence) costs, from save_ms_mean. */
  readonly share_at_5_s: number;
}

export async function benchUnitCheckpoints(opts: {
  depth: number;
  leaf: number;
  everyMs: number;
  epochs: number;
}): Promise<UnitCheckpointBench> {
  const n = 2048;
  const inputWidth = 784;
  const rng = createRng(11);
  const data = {
    n,
    inputWidth,
    x: Float32Array.from({ length: n * inputWidth }, () => rng()),
    y: Int32Array.from({ length: n }, (_, i) => i % 10),
  };
  const shape = {
    depth: opts.depth,
    leafWidth: opts.leaf,
    inputWidth,
    outputWidth: 10,
    activation: 'relu' as const,
  };
  const base = initWeights(shape, 3);
  const recipe = {
    epochs: opts.epochs,
    batchSize: 64,
    lr: 1e-3,
    optimizer: 'adam' as const,
    hardening: 1,
    leak: 0,
    seed: 5,
  };
  let saves = 0;
  let bytes = 0;
  const run = async (checkpointed: boolean): Promise<Run> => {
    const result = await trainUnit(base, data, recipe, {
      yieldEvery: 1,
      ...(checkpointed
        ? {
            checkpoint: {
              everyMs: opts.everyMs,
              now: () => performance.now(),
              save: (partial) => {
                bytes = encodeUnitDelta(partial.delta, partial.pathDelta).byteLength;
                saves++;
                return Promise.resolve();
              },
            },
          }
        : {}),
    });
    return { samplesPerS: result.samples / result.seconds, seconds: result.seconds };
  };
  await run(false); // compiles the backend's kernels
  // Interleaved, so that a change in the machine's load falls on both alike.
  const runs: { baseline: Run[]; checkpointed: Run[] } = { baseline: [], checkpointed: [] };
  for (let i = 0; i < 3; i++) {
    runs.baseline.push(await run(false));
    runs.checkpointed.push(await run(true));
  }
  const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
  const baseline = mean(runs.baseline.map((r) => r.samplesPerS));
  const checkpointed = mean(runs.checkpointed.map((r) => r.samplesPerS));
  // A save's whole cost (reading the weights, the subtraction, the encoding): the time the
  // checkpointed runs took beyond the baseline's, per save.
  const extraSeconds =
    mean(runs.checkpointed.map((r) => r.seconds)) - mean(runs.baseline.map((r) => r.seconds));
  const saveMs = (extraSeconds * 1000) / Math.max(1, saves / runs.checkpointed.length);
  return {
    depth: opts.depth,
    leaf: opts.leaf,
    every_ms: opts.everyMs,
    baseline_samples_per_s: Math.round(baseline),
    checkpointed_samples_per_s: Math.round(checkpointed),
    ratio: Number((checkpointed / baseline).toFixed(3)),
    saves,
    save_ms_mean: Number(saveMs.toFixed(1)),
    delta_mb: Number((bytes / 1e6).toFixed(2)),
    share_at_5_s: Number((saveMs / 5000).toFixed(4)),
  };
}
