import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { DataSplit } from '../shared/data/dataset.ts';
import { type RunningCoordinator, startCoordinator } from './main.ts';
import type { JobConfig } from './job/config.ts';
import type { EvalRow } from './store/store.ts';

const ARBOR_BIN = fileURLToPath(new URL('../bin/arbor.js', import.meta.url));

export interface LocalClusterOptions {
  readonly config: JobConfig;
  readonly workers: number;
  readonly data?: DataSplit;
  readonly log: Logger;
  /** Defaults to a fresh temporary directory. */
  readonly dir?: string;
  readonly port?: number;
  /** Workers' tensor backend (default: each picks the best it has). */
  readonly backend?: string;
  /** Where worker processes' stderr goes (default: discarded). */
  readonly workerStderr?: 'inherit' | 'ignore';
  readonly onListening?: (url: string) => void;
  /** Called once the coordinator is up (before pretraining ends). */
  readonly onStarted?: (coordinator: RunningCoordinator) => void;
}

export interface LocalClusterResult {
  readonly final: EvalRow;
  readonly wallSeconds: number;
  readonly coordinator: RunningCoordinator;
  readonly dir: string;
}

/**
 * A coordinator in this process and `workers` worker processes (`arbor worker`) on
 * loopback, run until the job is done. The caller closes `result.coordinator`.
 */
export async function runLocalCluster(options: LocalClusterOptions): Promise<LocalClusterResult> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'arbor-cluster-'));
  mkdirSync(dir, { recursive: true });
  const started = performance.now();
  const coordinator = await startCoordinator({
    config: options.config,
    dbPath: join(dir, 'arbor.db'),
    host: '127.0.0.1',
    port: options.port ?? 0,
    log: options.log,
    finalModelPath: join(dir, 'arbor-final.safetensors'),
    ...(options.data ? { data: options.data } : {}),
  });
  options.onListening?.(coordinator.url);
  options.onStarted?.(coordinator);
  const wsUrl = coordinator.url.replace(/^http/, 'ws');
  const children: ChildProcess[] = Array.from({ length: options.workers }, (_, i) =>
    spawn(
      process.execPath,
      [
        ARBOR_BIN,
        'worker',
        '--url',
        wsUrl,
        '--name',
        `local-${i + 1}`,
        ...(options.backend ? ['--backend', options.backend] : []),
      ],
      {
        stdio: ['ignore', 'ignore', options.workerStderr ?? 'ignore'],
      },
    ),
  );
  const killAll = () => children.forEach((child) => child.kill('SIGKILL'));
  process.once('exit', killAll);
  try {
    const final = await coordinator.done;
    const wallSeconds = (performance.now() - started) / 1000;
    await Promise.race([
      Promise.all(
        children.map((child) => (child.exitCode === null ? once(child, 'exit') : Promise.resolve())),
      ),
      new Promise((resolve) => setTimeout(resolve, 10_000)),
    ]);
    return { final, wallSeconds, coordinator, dir };
  } catch (error) {
    await coordinator.close();
    throw error;
  } finally {
    killAll();
    process.removeListener('exit', killAll);
  }
}
