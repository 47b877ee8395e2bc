/**
 * The volunteer's process loads the worker, shared and proto code it needs and nothing of
 * the coordinator: no coordinator module, no server dependency.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'arbor-lean-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SERVER_ONLY = /\/coordinator\/|node_modules\/(fastify|@fastify|better-sqlite3|prom-client|uplot)\//;

/** From source, so that each module is seen by its own name (the compiled copy joins them into chunks). */
async function modulesLoaded(name: string, args: readonly string[], compiled = false): Promise<string[]> {
  const log = join(dir, `${name}.log`);
  await run(process.execPath, ['--import', './test/helpers/module-recorder.mjs', ...args], {
    env: { ...process.env, ARBOR_MODULE_LOG: log, ARBOR_FROM_SOURCE: compiled ? '0' : '1' },
  });
  return readFileSync(log, 'utf8').trim().split('\n');
}

void describe('the worker process', { timeout: 60_000 }, () => {
  for (const [name, args] of [
    ['arbor worker', ['bin/arbor.js', 'worker', '--help']],
    ['arbor-worker', ['--import', 'tsx', 'packaging/entries/arbor-worker.ts', '--help']],
  ] as const) {
    void it(`${name} loads no coordinator module and no server dependency`, async () => {
      const modules = await modulesLoaded(name.replace(' ', '-'), args);
      assert.ok(
        modules.some((url) => url.endsWith('/worker/run-worker.ts')),
        'the recorder saw the worker loop load',
      );
      assert.deepEqual(
        modules.filter((url) => SERVER_ONLY.test(url)),
        [],
      );
    });
  }

  void it('the compiled `arbor worker` loads no server dependency either', async () => {
    const modules = await modulesLoaded('compiled-worker', ['bin/arbor.js', 'worker', '--help'], true);
    assert.ok(
      modules.some((url) => url.includes('/node_modules/.cache/arbor/cli-')),
      'it ran the compiled copy',
    );
    assert.ok(
      modules.some((url) => url.includes('@tensorflow/tfjs')),
      'the recorder saw the worker load',
    );
    assert.deepEqual(
      modules.filter((url) => SERVER_ONLY.test(url)),
      [],
    );
  });

  void it('arbor --help lists every command and loads none of them', async () => {
    const modules = await modulesLoaded('help', ['bin/arbor.js', '--help']);
    assert.deepEqual(
      modules.filter((url) => /\/(cli|worker|coordinator)\/(?!main\.ts)|@tensorflow/.test(url)),
      [],
    );
  });

  void it('the coordinator command does load the server (the recorder can tell)', async () => {
    const modules = await modulesLoaded('coordinator', ['bin/arbor.js', 'coordinator', '--help']);
    assert.ok(modules.some((url) => SERVER_ONLY.test(url)));
  });
});
