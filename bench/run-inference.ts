/**
 * node --import tsx bench/run-inference.ts [--kernel auto|wasm|js] [--reps N]
 * Hard FFF inference vs the dense layer of the same width on tfjs wasm, one JSON line
 * per configuration, then a small table on stderr.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { benchInference, type InferenceBenchResult } from './inference.ts';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const kernel = (arg('kernel') ?? 'auto') as 'auto' | 'wasm' | 'js';
const reps = Number(arg('reps') ?? 7);

await tf.setBackend('wasm');
await tf.ready();
const backend = tf.getBackend();

const configs = [
  { depth: 9, leaf: 8, batch: 2048 },
  { depth: 4, leaf: 8, batch: 2048 },
];
const results: InferenceBenchResult[] = [];
for (const c of configs) {
  const r = await benchInference({ ...c, reps, backendName: backend, kernel });
  results.push(r);
  console.log(JSON.stringify(r));
}
console.error('D  L  width  batch  kernel     fff_ms   ff_ms   speedup');
for (const r of results) {
  console.error(
    `${String(r.depth).padEnd(3)}${String(r.leaf).padEnd(3)}${String(r.width).padEnd(7)}${String(r.batch).padEnd(7)}` +
      `${r.fff_kernel.padEnd(11)}${r.fff_ms.toFixed(2).padStart(6)}  ${r.ff_ms.toFixed(1).padStart(6)}  ${r.speedup.toFixed(1).padStart(6)}x`,
  );
}
