/**
 * A coordinator process on the default job (the embedded MNIST), for the benches that time a
 * volunteer joining it: resolves once it serves its join command and leases units. It dies
 * with the bench, however the bench ends.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

export async function defaultJobCoordinator(
  dir: string,
  extraArgs: readonly string[] = [],
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    ['bin/arbor.js', 'coordinator', '--port', '0', '--db', join(dir, 'arbor.db'), ...extraArgs],
    { cwd: root, env: { ...process.env, ARBOR_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  process.once('exit', () => child.kill('SIGKILL'));
  let stdout = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  for (;;) {
    const url = /listening on (http:\/\/[0-9.]+:\d+)/.exec(stdout)?.[1];
    if (url !== undefined && /volunteers join with/.test(stdout)) {
      const status = (await (await fetch(`${url}/v1/status`)).json()) as { phase: string };
      if (status.phase === 'training') return { child, url };
    }
    if (child.exitCode !== null) throw new Error(`the coordinator exited with ${child.exitCode}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
