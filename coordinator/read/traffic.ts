import { parameterCount, type FFFShape } from '../../shared/fff/weights.ts';

/**
 * Model bytes per training sample that data-parallel training of the same model would
 * move: one ring all-reduce of the full gradient, 2(N-1)/N·|θ| float32 values per step.
 */
export function dataParallelBytesPerSample(shape: FFFShape, workers: number, batch: number): number {
  const n = Math.max(2, workers);
  return (((2 * (n - 1)) / n) * parameterCount(shape) * 4) / batch;
}
