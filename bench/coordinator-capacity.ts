/**
 * What one coordinator process holds: a coordinator on a small long job (its own process),
 * and simulated volunteers in other processes (helpers/capacity-driver.ts) that lease and
 * return units as fast as the coordinator lets them, over real sockets, without training.
 * Reports round trips a second, the latency of an assignment and of a result's verdict,
 * /v1/status's answer time under that load, and the coordinator's memory.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CapacityReport, CapacityTask } from './helpers/capacity-driver.ts';
import { defaultJobCoordinator } from './helpers/default-coordinator.ts';
import { socketUrl } from '../proto/routes.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const driver = fileURLToPath(new URL('./helpers/capacity-driver.ts', import.meta.url));

/** Many shards, many units in flight each, small units, no evaluation in the way. */
const CAPACITY_JOB = (
  '--depth 5 --frozen 3 --leaf 8 --shard-epochs 10000 --unit-seconds 0.05 --max-peers 1000000 ' +
  '--in-flight-span 1 --eval-every 1000000 --pretrain-epochs 1 --pretrain-samples 2000'
).split(' ');

export interface CapacityResult {
  readonly workers: number;
  readonly duration_s: number;
  readonly workers_connected: number;
  /** Accepted results a second (each one an assignment and a verdict). */
  readonly units_per_s: number;
  readonly assign_p50_ms: number;
  readonly assign_p99_ms: number;
  readonly accept_p50_ms: number;
  readonly accept_p99_ms: number;
  /** Median of GET /v1/status during the run. */
  readonly status_ms: number;
  /** The coordinator's resident memory at its peak. */
  readonly coordinator_rss_mb: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly no_work: number;
  /** Uploads told 429 (all upload slots busy) and retried, as a worker does. */
  readonly busy_retries: number;
  readonly errors: number;
  readonly first_errors: readonly string[];
}

const percentile = (values: number[], p: number): number => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};

function runDriver(task: CapacityTask): Promise<CapacityReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', driver], {
      cwd: root,
      env: { ...process.env, ARBOR_CAPACITY_TASK: JSON.stringify(task) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    process.once('exit', () => child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out) as CapacityReport)
        : reject(new Error(`a driver exited with ${code}`)),
    );
  });
}

/** VmHWM (peak) of a process, in MB. */
const peakRssMb = (pid: number): number =>
  Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;

async function statusMs(base: string, times: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const started = performance.now();
    await (await fetch(`${base}/v1/status`)).text();
    samples.push(performance.now() - started);
  }
  return percentile(samples, 50);
}

export async function benchCoordinatorCapacity(
  workers: number,
  durationS: number,
  processes: number,
): Promise<CapacityResult> {
  const cache = join(root, 'node_modules/.cache');
  mkdirSync(cache, { recursive: true });
  const dir = mkdtempSync(join(cache, 'arbor-capacity-'));
  const coordinator = await defaultJobCoordinator(dir, CAPACITY_JOB);
  try {
    const per = Math.ceil(workers / processes);
    const startAtMs = Date.now() + 3000 + workers * 3;
    const endAtMs = startAtMs + durationS * 1000;
    const drivers = Array.from({ length: processes }, (_, i) =>
      runDriver({
        wsUrl: socketUrl(coordinator.url),
        httpBase: coordinator.url,
        workers: Math.max(0, Math.min(per, workers - i * per)),
        first: i * per,
        startAtMs,
        endAtMs,
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, startAtMs - Date.now() + (durationS * 1000) / 2));
    const status = await statusMs(coordinator.url, 5);
    const reports = await Promise.all(drivers);
    const rss = peakRssMb(coordinator.child.pid!);
    const all = <K extends 'assignMs' | 'acceptMs'>(key: K) => reports.flatMap((r) => r[key]);
    const errors = reports.flatMap((r) => r.errors);
    const accepted = reports.reduce((sum, r) => sum + r.accepted, 0);
    return {
      workers,
      duration_s: durationS,
      workers_connected: reports.reduce((sum, r) => sum + r.connected, 0),
      units_per_s: accepted / durationS,
      assign_p50_ms: percentile(all('assignMs'), 50),
      assign_p99_ms: percentile(all('assignMs'), 99),
      accept_p50_ms: percentile(all('acceptMs'), 50),
      accept_p99_ms: percentile(all('acceptMs'), 99),
      status_ms: status,
      coordinator_rss_mb: rss,
      accepted,
      rejected: reports.reduce((sum, r) => sum + r.rejected, 0),
      no_work: reports.reduce((sum, r) => sum + r.noWork, 0),
      busy_retries: reports.reduce((sum, r) => sum + r.busy, 0),
      errors: errors.length,
      first_errors: [...new Set(errors)].slice(0, 5),
    };
  } finally {
    coordinator.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
