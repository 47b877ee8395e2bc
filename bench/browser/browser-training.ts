/**
 * `arbor bench training --browser`: the training benchmark in Chromium on WebGPU, WebGL2 or
 * wasm, beside the same benchmark on the browser's wasm as the baseline of the same run.
 */
import type { TrainingBenchResult } from '../training.ts';
import { openBrowserLab } from './browser-lab.ts';

export const BROWSER_BENCH_BACKENDS = ['webgpu', 'webgl', 'wasm'] as const;

export interface BrowserTrainingResult extends TrainingBenchResult {
  readonly where: 'chromium';
  /** The browser's wasm on the same shape in the same run. */
  readonly wasm_fff_samples_per_s: number;
  readonly ratio_to_wasm: number;
}

export async function benchBrowserTraining(
  backend: string,
  shape: { depth: number; leaf: number; batch: number; steps: number },
): Promise<BrowserTrainingResult> {
  const lab = await openBrowserLab();
  try {
    const task = { task: 'training', ...shape } as const;
    const result = await lab.run<TrainingBenchResult>(backend, task);
    const wasm = backend === 'wasm' ? result : await lab.run<TrainingBenchResult>('wasm', task);
    return {
      ...result,
      where: 'chromium',
      wasm_fff_samples_per_s: wasm.fff_samples_per_s,
      ratio_to_wasm: result.fff_samples_per_s / wasm.fff_samples_per_s,
    };
  } finally {
    await lab.close();
  }
}
