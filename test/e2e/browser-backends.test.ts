/**
 * The same unit (base, data, seed) trained in Chromium on WebGPU, WebGL2 and wasm gives the
 * same delta within NUMERICS_TOLERANCE, and a WebGL that computes in float16 is caught.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type BrowserLab, openBrowserLab } from '../../bench/browser/browser-lab.ts';
import type { UnitRun } from '../../bench/browser/lab-messages.ts';
import { encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import { encodeShardData } from '../../shared/data/shard-blob.ts';
import { loadEmbeddedMnist } from '../../shared/data/mnist-embedded.ts';
import { initWeights } from '../../shared/fff/init.ts';
import { NUMERICS_TOLERANCE, type NumericsCheck, deltaDistance } from '../../shared/fff/numerics-probe.ts';
import { decodeUnitDelta } from '../../shared/fff/unit-delta.ts';

const SAMPLES = 1024;

function unitTask() {
  const { train } = loadEmbeddedMnist();
  const width = train.inputWidth;
  const data = {
    ...train,
    n: SAMPLES,
    x: train.x.slice(0, SAMPLES * width),
    y: train.y.slice(0, SAMPLES),
  };
  const base = initWeights(
    { depth: 2, leafWidth: 8, inputWidth: width, outputWidth: 10, activation: 'relu' },
    3,
  );
  return {
    task: 'unit',
    base: Buffer.from(encodeFFF(base)).toString('base64'),
    data: Buffer.from(encodeShardData(data)).toString('base64'),
    epochs: 2,
    batch: 32,
    seed: 9,
  } as const;
}

void describe('browser backends', { timeout: 300_000 }, () => {
  let lab: BrowserLab;
  before(async () => (lab = await openBrowserLab()));
  after(async () => lab?.close());

  void it('train one unit to the same delta on WebGPU, WebGL2 and wasm', async (t) => {
    const task = unitTask();
    const deltas = new Map<string, ReturnType<typeof decodeUnitDelta>['delta']>();
    for (const backend of ['wasm', 'webgl', 'webgpu']) {
      const run = await lab.run<UnitRun>(backend, task);
      assert.equal(run.samples, 2 * SAMPLES);
      deltas.set(backend, decodeUnitDelta(Buffer.from(run.delta, 'base64'), backend).delta);
    }
    const wasm = deltas.get('wasm')!;
    for (const backend of ['webgl', 'webgpu']) {
      const distance = deltaDistance(deltas.get(backend)!, wasm);
      t.diagnostic(`${backend}: ${distance.toExponential(2)} from wasm`);
      assert.ok(distance < NUMERICS_TOLERANCE, `${backend} delta is ${distance} away from wasm's`);
    }
  });

  void it('finds a WebGL that renders float16 textures too far from the CPU to train', async (t) => {
    const f16 = await openBrowserLab();
    try {
      const check = await f16.run<NumericsCheck>('webgl', {
        task: 'probe',
        flags: { WEBGL_FORCE_F16_TEXTURES: true },
      });
      assert.equal(check.ok, false, `float16 WebGL passed the probe at ${check.relativeError}`);
      t.diagnostic(`float16 WebGL: ${check.relativeError.toExponential(2)} from the CPU`);
    } finally {
      await f16.close();
    }
    const float32 = await lab.run<NumericsCheck>('webgl', { task: 'probe' });
    assert.ok(float32.ok, `float32 WebGL failed the probe at ${float32.relativeError}`);
  });
});
