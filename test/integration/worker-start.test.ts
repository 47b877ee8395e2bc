/**
 * A volunteer who gets the address or the token wrong hears so at once, in one line, and
 * the process ends (no silent retrying forever).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
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

  void it('says in readable lines, off a terminal too, that nothing listens where it was pointed, and what to check', async () => {
    const server = createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const env: NodeJS.ProcessEnv = { ...process.env, ARBOR_TOKEN: '' };
    delete env['ARBOR_LOG_FORMAT'];
    const child = spawn(
      process.execPath,
      ['bin/arbor.js', 'worker', '--backend', 'wasm', '--url', `ws://127.0.0.1:${port}`, '--name', 'typo'],
      { env, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const reap = () => child.kill('SIGKILL');
    process.once('exit', reap);
    try {
      while (!/coordinator unreachable/.test(stderr)) {
        assert.equal(child.exitCode, null, stderr);
        await once(child.stderr, 'data');
      }
    } finally {
      child.kill('SIGKILL');
      process.removeListener('exit', reap);
    }
    const line = stderr.split('\n').find((l) => l.includes('coordinator unreachable'))!;
    assert.doesNotMatch(line, /^\{/, 'not a JSON line');
    assert.match(line, /WARN.*coordinator unreachable; reconnecting/);
    assert.match(
      line,
      new RegExp(`nothing listens on 127\\.0\\.0\\.1 port ${port}: is the coordinator running`),
    );
  });
});
