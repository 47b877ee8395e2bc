/**
 * The CLI's GPU paths on a machine without a usable GPU adapter (this one: Dawn finds no
 * Vulkan device): `--backend webgpu` and `--gpu` say why each GPU path was skipped and fall
 * back to wasm; where an adapter exists, webgpu must be chosen and pass the numerics probe.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { selectBackend } from '../../shared/backend.ts';
import { spawnArbor, waitFor } from '../helpers/processes.ts';

const NO_ADAPTER = /^webgpu: (Dawn found no GPU adapter|the optional package 'webgpu' is not installed)/;

void describe('GPU selection in the worker CLI', () => {
  void it('--backend webgpu falls back to wasm, saying why, when there is no adapter', async () => {
    const chosen = await selectBackend('webgpu');
    if (chosen.name === 'webgpu') {
      assert.equal(chosen.gpu, true);
      return;
    }
    assert.equal(chosen.name, 'wasm');
    assert.equal(chosen.gpu, false);
    assert.equal(chosen.skipped.length, 1);
    assert.match(chosen.skipped[0]!, NO_ADAPTER);
  });

  void it('--gpu tries webgpu, then the CUDA build of TensorFlow, before the CPU', async () => {
    const chosen = await selectBackend('auto', true);
    if (chosen.gpu) return;
    assert.equal(chosen.name, 'wasm');
    assert.match(chosen.skipped[0]!, NO_ADAPTER);
    assert.match(chosen.skipped[1]!, /^@tensorflow\/tfjs-node-gpu not loadable/);
  });

  void it('an explicit CPU backend that cannot start is an error, not a fallback', async () => {
    await assert.rejects(selectBackend('tensorflow'), /no usable tensor backend for 'tensorflow'/);
  });

  void it('arbor worker --gpu logs each skipped GPU path and the backend it trains on', async (t) => {
    const worker = spawnArbor(['worker', '--url', 'ws://127.0.0.1:9', '--gpu', '--name', 'gpu-less']);
    t.after(() => worker.child.kill());
    const ready = await waitFor('the worker to be ready', () =>
      worker.stderr.split('\n').find((line) => line.includes('"msg":"ready"')),
    );
    const backend = (JSON.parse(ready) as { backend: string }).backend;
    if (backend === 'webgpu' || backend === 'tensorflow') return;
    assert.match(worker.stderr, /"msg":"skipped webgpu: /);
    assert.match(worker.stderr, /"msg":"skipped @tensorflow\/tfjs-node-gpu not loadable/);
    assert.match(worker.stderr, /"msg":"no GPU path on this machine: training on wasm"/);
  });
});
