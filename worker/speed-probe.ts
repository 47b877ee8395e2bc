import { initWeights } from '../shared/fff/init.ts';
import { TrainableFFF } from '../shared/fff/soft-model.ts';
import { trainFFF } from '../shared/fff/trainer.ts';
import { createRng, uniformFill } from '../shared/random.ts';

/**
 * Training samples per second on a small MNIST-sized FFF (a few hundred ms on wasm at the
 * default `n`): the speed in hello.
 */
export async function measureTrainingSpeed(n = 2048): Promise<number> {
  const inputWidth = 784;
  const x = new Float32Array(n * inputWidth);
  uniformFill(x, 1, createRng(7));
  const y = Int32Array.from({ length: n }, (_, i) => i % 10);
  const model = new TrainableFFF(
    initWeights({ depth: 3, leafWidth: 8, inputWidth, outputWidth: 10, activation: 'relu' }, 7),
  );
  try {
    const phase = {
      name: 'probe',
      epochs: 1,
      routing: 'soft',
      hardening: 1,
      lr: 1e-3,
      lrDecay: 'constant',
      train: 'all',
      leak: 0,
    } as const;
    const stats = await trainFFF(
      model,
      { n, inputWidth, x, y },
      { batchSize: 128, optimizer: 'adam', phases: [phase], balance: 0, balanceLevels: 0, seed: 7 },
    );
    return stats.samplesPerSecond;
  } finally {
    model.dispose();
  }
}
