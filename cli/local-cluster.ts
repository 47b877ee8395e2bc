import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { DataSplit } from '../shared/data/dataset.ts';
import { type RunningCoordinator, startCoordinator } from '../coordinator/main.ts';
import type { JobConfig } from '../coordinator/job/config.ts';
import type { EvalRow } from '../coordinator/store/store.ts';
import { type WatchedWorker, WorkerWatch, stallLimitMs } from './worker-watch.ts';

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
  /** Extra flags for every `arbor worker` (e.g. `--max-units 1`). */
  readonly workerArgs?: readonly string[];
  /** Give up when no result came for this long while training (default: stallLimitMs). */
  readonly stallMs?: number;
}

const WATCH_EVERY_MS = 1_000;
const LAST_WORDS = 3;

interface SpawnedWorker extends WatchedWorker {
  readonly child: ChildProcess;
}

/** A worker's JSON log line as its message (and error); any other line as it is. */
function logMessage(line: string): string {
  try {
    const entry = JSON.parse(line) as { msg?: unknown; err?: unknown };
    if (typeof entry.msg === 'string')
      return typeof entry.err === 'string' && !entry.msg.includes(entry.err)
        ? `${entry.msg}: ${entry.err}`
        : entry.msg;
  } catch {
    // not JSON: a plain line
  }
  return line.trim();
}

/** One `arbor worker` process; its last stderr lines are kept for the reason a run failed. */
function spawnWorker(name: string, wsUrl: string, options: LocalClusterOptions): SpawnedWorker {
  const child = spawn(
    process.execPath,
    [
      ARBOR_BIN,
      'worker',
      '--url',
      wsUrl,
      '--name',
      name,
      ...(options.backend ? ['--backend', options.backend] : []),
      ...(options.workerArgs ?? []),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const lastWords: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (options.workerStderr === 'inherit') process.stderr.write(`${line}\n`);
    const said = logMessage(line);
    if (said === '') return;
    lastWords.push(said.length > 300 ? `${said.slice(0, 300)}…` : said);
    if (lastWords.length > LAST_WORDS) lastWords.shift();
  });
  return {
    name,
    child,
    lastWords,
    get exitCode() {
      return child.exitCode;
    },
    get signalCode() {
      return child.signalCode;
    },
  };
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
  const children = Array.from({ length: options.workers }, (_, i) =>
    spawnWorker(`local-${i + 1}`, wsUrl, options),
  );
  const killAll = () => children.forEach(({ child }) => child.kill('SIGKILL'));
  process.once('exit', killAll);
  const watch = new WorkerWatch(() => children, options.stallMs ?? stallLimitMs(options.config.unit_seconds));
  let watching: NodeJS.Timeout | undefined;
  const stopped = new Promise<never>((_, reject) => {
    watching = setInterval(() => {
      const { accepted, rejected } = coordinator.store.resultCounts();
      const failure = watch.check(
        { phase: coordinator.core.phase, results: accepted + rejected },
        Date.now(),
      );
      if (failure !== undefined) reject(failure);
    }, WATCH_EVERY_MS);
  });
  try {
    const final = await Promise.race([coordinator.done, stopped]);
    const wallSeconds = (performance.now() - started) / 1000;
    await Promise.race([
      Promise.all(
        children.map(({ child }) => (child.exitCode === null ? once(child, 'exit') : Promise.resolve())),
      ),
      new Promise((resolve) => setTimeout(resolve, 10_000)),
    ]);
    return { final, wallSeconds, coordinator, dir };
  } catch (error) {
    await coordinator.close();
    // A folder made here holds nothing the caller can have: it goes with the failure.
    if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
    throw error;
  } finally {
    clearInterval(watching);
    killAll();
    process.removeListener('exit', killAll);
  }
}
