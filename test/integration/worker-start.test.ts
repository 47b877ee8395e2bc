/**
 * A volunteer who gets the address or the token wrong hears so at once, in one line, and
 * the process ends (no silent retrying forever).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { type SmallCoordinator, startSmallCoordinator } from '../helpers/small-job.ts';

const run = promisify(execFile);
let small: SmallCoordinator;
before(async () => {
  small = await startSmallCoordinator({ token: 'the-token' });
});
after(() => small?.close());

async function workerFails(args: string[]): Promise<string> {
  try {
    await run(process.execPath, ['bin/arbor.js', 'worker', '--backend', 'wasm', ...args], {
      timeout: 60_000,
      env: { ...process.env, ARBOR_TOKEN: '', ARBOR_LOG_FORMAT: 'json' },
    });
  } catch (error) {
    const failed = error as { code?: number; stderr: string };
    assert.equal(failed.code, 1);
    return failed.stderr.trim().split('\n').at(-1)!;
  }
  assert.fail('the worker should have exited with an error');
}

void describe('a worker that cannot join', { timeout: 120_000 }, () => {
  void it('refuses an address without a scheme before connecting', async () => {
    assert.match(
      await workerFails(['--url', 'localhost:7070']),
      /--url must look like ws:\/\/HOST:PORT, got 'localhost:7070'/,
    );
  });

  void it('says that the coordinator requires a token, and how to give one', async () => {
    const ws = small.coordinator.url.replace(/^http/, 'ws');
    assert.equal(
      await workerFails(['--url', ws]),
      'arbor: [UNAUTHORIZED] this coordinator requires a token: pass --token or set ARBOR_TOKEN',
    );
    assert.equal(
      await workerFails(['--url', ws, '--token', 'wrong']),
      'arbor: [UNAUTHORIZED] the coordinator refused this token (check --token or ARBOR_TOKEN)',
    );
  });
});
