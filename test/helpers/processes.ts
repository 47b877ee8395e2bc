import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Spawned {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
}

/**
 * `node bin/arbor.js ...args` with captured output; killed when the test process exits, with
 * its whole process group (the workers a demo or bench spawns) when `group` is set.
 */
export function spawnArbor(
  args: readonly string[],
  env: Record<string, string> = {},
  options: { group?: boolean } = {},
): Spawned {
  const child = spawn(process.execPath, ['bin/arbor.js', ...args], {
    env: { ...process.env, ARBOR_LOG_LEVEL: 'info', ARBOR_LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.group === true,
  });
  const spawned: Spawned = {
    child,
    stdout: '',
    stderr: '',
    exited: once(child, 'exit').then(([code]) => code as number | null),
  };
  child.stdout!.on('data', (chunk: Buffer) => (spawned.stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (spawned.stderr += chunk.toString()));
  keepOutput(child, args);
  const reap = (): void => {
    try {
      if (options.group === true) process.kill(-child.pid!, 'SIGKILL');
      else child.kill('SIGKILL');
    } catch {
      // already gone
    }
  };
  process.once('exit', reap);
  void spawned.exited.then(() => {
    process.removeListener('exit', reap);
    // The group's leader is gone; whatever it left behind goes with it.
    if (options.group === true) reap();
  });
  return spawned;
}

/**
 * With ARBOR_TEST_LOGS=DIR, every spawned process's output is also kept in DIR/<pid>.log,
 * headed by its arguments: what a hung or killed test cannot print.
 */
function keepOutput(child: ChildProcess, args: readonly string[]): void {
  const dir = process.env['ARBOR_TEST_LOGS'];
  if (dir === undefined || child.pid === undefined) return;
  const file = join(dir, `${child.pid}.log`);
  appendFileSync(file, `# arbor ${args.join(' ')}\n`);
  const keep = (chunk: Buffer): void => appendFileSync(file, chunk);
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
}

/** Polls `probe` every 50 ms until it returns a value other than undefined. */
export async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Polls the async `probe` every 250 ms (a page, an HTTP endpoint) until it returns a value. */
export async function pollUntil<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 120_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The coordinator's http URL, from its first stdout line. */
export const coordinatorUrl = (coordinator: Spawned): Promise<string> =>
  waitFor(
    'the coordinator to listen',
    () => /listening on (http:\/\/[0-9.]+:\d+)/.exec(coordinator.stdout)?.[1],
  );
