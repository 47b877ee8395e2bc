/**
 * The browser lab's Web Worker: the volunteer's own code (backend choice, training, delta
 * encoding) run on request on one backend, for the backend tests and `arbor bench training`.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { decodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import { decodeShardData } from '../../shared/data/shard-blob.ts';
import { trainUnit } from '../../shared/fff/local-training.ts';
import { probeNumerics } from '../../shared/fff/numerics-probe.ts';
import { encodeUnitDelta } from '../../shared/fff/unit-delta.ts';
import { benchTraining } from '../training.ts';
import type { LabAnswer, LabRequest, UnitRun } from './lab-messages.ts';

setWasmPaths(`${self.location.origin}/wasm/`);

// page.evaluate carries JSON: bytes cross as base64.
const fromBase64 = (text: string): Uint8Array => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000)
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

async function use(backend: string): Promise<void> {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not start`);
  await tf.ready();
}

async function run(request: LabRequest): Promise<unknown> {
  switch (request.task) {
    case 'probe':
      for (const [flag, value] of Object.entries(request.flags ?? {})) tf.env().set(flag, value);
      return probeNumerics(request.backend);
    case 'unit': {
      await use(request.backend);
      const base = decodeFFF(fromBase64(request.base), 'lab base');
      const data = decodeShardData(fromBase64(request.data), 'lab data');
      const recipe = {
        epochs: request.epochs,
        batchSize: request.batch,
        lr: 3e-3,
        optimizer: 'adam',
        hardening: 1,
        leak: 0,
        seed: request.seed,
      } as const;
      const result = await trainUnit(base, data, recipe);
      const answer: UnitRun = {
        delta: toBase64(encodeUnitDelta(result.delta)),
        samples: result.samples,
        seconds: result.seconds,
      };
      return answer;
    }
    case 'training':
      await use(request.backend);
      return benchTraining(request);
  }
}

self.onmessage = (event: MessageEvent<LabRequest>) => {
  const request = event.data;
  run(request).then(
    (result) => self.postMessage({ id: request.id, ok: true, result } satisfies LabAnswer),
    (error: unknown) =>
      self.postMessage({
        id: request.id,
        ok: false,
        error: (error as Error).message ?? String(error),
      } satisfies LabAnswer),
  );
};
