/**
 * Volunteering as a service, in one step: the worker prints a systemd user unit for itself.
 * systemd accepts the unit (`systemd-analyze verify`), and its ExecStart, read back with
 * systemd's quoting and run as systemd would run it, joins a real coordinator with Node
 * alone and trains a unit that is accepted; the token stays out of the command line.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type SmallCoordinator, startSmallCoordinator } from '../helpers/small-job.ts';

const TOKEN = 'service-secret';
const dir = mkdtempSync(join(tmpdir(), 'arbor-service-'));
let small: SmallCoordinator;
before(async () => {
  small = await startSmallCoordinator({ token: TOKEN });
});
after(async () => {
  await small?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The words of an ExecStart= line, as systemd splits and unescapes them. */
function execWords(line: string): string[] {
  const words: string[] = [];
  for (const match of line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) {
    const raw = match[1] !== undefined ? match[1].replace(/\\(.)/g, '$1') : match[2]!;
    words.push(raw.replace(/%%/g, '%').replace(/\$\$/g, '$'));
  }
  return words;
}

const hasSystemd = spawnSync('systemd-analyze', ['--version']).status === 0;

void describe('the worker as a systemd service', { timeout: 300_000 }, () => {
  void it('prints a unit systemd accepts, whose command joins the coordinator and trains', async (t) => {
    const url = small.coordinator.url.replace(/^http/, 'ws');
    const printed = spawnSync(
      process.execPath,
      [
        'bin/arbor.js',
        'worker',
        '--url',
        url,
        '--token',
        TOKEN,
        '--name',
        'servant',
        '--max-cpu',
        '80',
        '--print-service',
      ],
      { encoding: 'utf8', env: { ...process.env, ARBOR_TOKEN: '' } },
    );
    assert.equal(printed.status, 0, printed.stderr);
    const unit = printed.stdout;
    const file = join(dir, 'arbor-worker.service');
    writeFileSync(file, unit);
    if (hasSystemd) {
      const verify = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
      assert.equal(verify.status, 0, verify.stderr);
    } else t.diagnostic('systemd-analyze is not installed: the unit file was not verified');
    assert.match(unit, /^Environment="?ARBOR_TOKEN=service-secret"?$/m);
    const execLine = /^ExecStart=(.*)$/m.exec(unit)![1]!;
    assert.doesNotMatch(execLine, /service-secret/, 'the token is not on the command line');
    const [program, ...args] = execWords(execLine);
    assert.equal(program, process.execPath);
    assert.deepEqual(args.slice(-7), ['--', '--url', url, '--name', 'servant', '--max-cpu', '80']);

    const child = spawn(program!, [...args, '--max-units', '1'], {
      cwd: mkdtempSync(join(dir, 'cwd-')),
      env: { ...process.env, HOME: mkdtempSync(join(dir, 'home-')), ARBOR_TOKEN: TOKEN, ARBOR_HOME: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const reap = () => child.kill('SIGKILL');
    process.once('exit', reap);
    try {
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 0, stderr.slice(-2000));
    } finally {
      process.removeListener('exit', reap);
    }
    const { store } = small.coordinator;
    const servant = store.listWorkers().find((w) => w.name === 'servant');
    assert.ok(servant, stderr.slice(-2000));
    assert.equal(
      store.listResults().filter((r) => r.workerId === servant.id && r.status === 'accepted').length,
      1,
    );
  });
});
