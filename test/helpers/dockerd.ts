import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { openSync, readFileSync } from 'node:fs';

export interface Dockerd {
  /** Stops the daemon if this process started it; a daemon that was already running stays. */
  stop(): Promise<void>;
}

const answers = () => spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 20_000 }).status === 0;

/**
 * A Docker engine to talk to: the running one, else a `dockerd` started here (as root) with its
 * log in `logFile`. Resolves with the reason instead when no engine can run on this machine.
 */
export async function ensureDockerd(logFile: string, timeoutMs = 60_000): Promise<Dockerd | string> {
  if (answers()) return { stop: () => Promise.resolve() };
  if (spawnSync('sh', ['-c', 'command -v dockerd && command -v docker']).status !== 0)
    return 'docker or dockerd is not installed (apt-get install docker.io docker-compose)';
  const log = openSync(logFile, 'a');
  const daemon: ChildProcess = spawn('dockerd', [], { stdio: ['ignore', log, log] });
  const reap = () => daemon.kill('SIGKILL');
  process.once('exit', reap);
  let exited = false;
  const gone = once(daemon, 'exit').then(() => {
    exited = true;
    process.removeListener('exit', reap);
  });
  const until = Date.now() + timeoutMs;
  while (!answers()) {
    if (exited || Date.now() > until) {
      daemon.kill('SIGKILL');
      await gone;
      return `dockerd did not start: ${readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join(' | ')}`;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return {
    stop: async () => {
      if (exited) return;
      daemon.kill('SIGTERM');
      const timer = setTimeout(() => daemon.kill('SIGKILL'), 30_000);
      await gone;
      clearTimeout(timer);
    },
  };
}
