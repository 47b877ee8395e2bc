/**
 * How long a volunteer's process takes to load its code, and its peak memory, for the
 * repository's `arbor worker`, the packaged `arbor-worker` bundle, `arbor --help`, and the
 * baseline of loading every command (what `arbor worker` loaded before commands were loaded
 * lazily, and `arbor --help` until it named them without loading them).
 * Each runs `--help`: every module is imported, nothing is trained. The operator's
 * `arbor status` is also timed against a live coordinator, from the compiled copy that
 * bin/arbor.js starts and from source through tsx (ARBOR_FROM_SOURCE=1).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildWorkerPackage } from '../packaging/worker-package.ts';
import { defaultJobCoordinator } from './helpers/default-coordinator.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));

export interface StartupSample {
  readonly ms: number;
  readonly max_rss_mb: number;
}

export interface WorkerStartupResult {
  readonly runs: number;
  readonly all_commands: StartupSample;
  /** `arbor --help`: the names and summaries of the commands, none of them loaded. */
  readonly arbor_help: StartupSample;
  /** `arbor status --help` and `arbor admin --help`: the operator's commands, their checks loaded only when used. */
  readonly status_help: StartupSample;
  readonly admin_help: StartupSample;
  readonly arbor_worker: StartupSample;
  /** The same commands from source through tsx, as bin/arbor.js ran them before the compiled copy. */
  readonly arbor_help_source: StartupSample;
  readonly arbor_worker_source: StartupSample;
  /** `arbor status` against a live coordinator on the default job: whole command, request included. */
  readonly status_live: StartupSample;
  readonly status_live_source: StartupSample;
  /** `arbor admin resume` against the same coordinator. */
  readonly admin_live: StartupSample;
  /** status_live / status_live_source */
  readonly status_live_ratio: number;
  readonly packaged_worker: StartupSample;
  /** arbor_worker / all_commands */
  readonly ms_ratio: number;
  readonly rss_ratio: number;
  readonly packaged_ms_ratio: number;
  readonly packaged_rss_ratio: number;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

/** The volunteer package's self-contained bundle, written out where it can run. */
async function extractBundle(dir: string): Promise<string> {
  const [bundle] = (await buildWorkerPackage()).files;
  const path = join(dir, bundle!.name);
  writeFileSync(path, bundle!.bytes);
  return path;
}

async function measure(
  args: readonly string[],
  runs: number,
  dir: string,
  fromSource = false,
): Promise<StartupSample> {
  const report = join(dir, `report-${Math.random().toString(36).slice(2)}.jsonl`);
  for (let i = 0; i < runs; i++)
    await run(process.execPath, ['--import', join(root, 'bench/helpers/exit-report.mjs'), ...args], {
      cwd: root,
      env: { ...process.env, ARBOR_EXIT_REPORT: report, ARBOR_FROM_SOURCE: fromSource ? '1' : '0' },
    });
  const samples = readFileSync(report, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as StartupSample);
  return { ms: median(samples.map((s) => s.ms)), max_rss_mb: median(samples.map((s) => s.max_rss_mb)) };
}

export async function benchWorkerStartup(runs: number): Promise<WorkerStartupResult> {
  const cache = join(root, 'node_modules/.cache');
  mkdirSync(cache, { recursive: true });
  const dir = mkdtempSync(join(cache, 'arbor-startup-'));
  try {
    const bundle = await extractBundle(dir);
    await run(process.execPath, ['bin/arbor.js', '--version'], { cwd: root }); // the compiled copy, made once
    const allCommands = await measure(['--import', 'tsx', 'bench/helpers/load-every-command.ts'], runs, dir);
    const topHelp = await measure(['bin/arbor.js', '--help'], runs, dir);
    const statusHelp = await measure(['bin/arbor.js', 'status', '--help'], runs, dir);
    const adminHelp = await measure(['bin/arbor.js', 'admin', '--help'], runs, dir);
    const arborWorker = await measure(['bin/arbor.js', 'worker', '--help'], runs, dir);
    const packaged = await measure([bundle, '--help'], runs, dir);
    const topHelpSource = await measure(['bin/arbor.js', '--help'], runs, dir, true);
    const arborWorkerSource = await measure(['bin/arbor.js', 'worker', '--help'], runs, dir, true);
    const coordinator = await defaultJobCoordinator(dir, ['--admin-token', 'bench']);
    let statusLive: StartupSample;
    let statusLiveSource: StartupSample;
    let adminLive: StartupSample;
    try {
      const status = ['bin/arbor.js', 'status', '--url', coordinator.url];
      statusLive = await measure(status, runs, dir);
      statusLiveSource = await measure(status, runs, dir, true);
      adminLive = await measure(
        ['bin/arbor.js', 'admin', 'resume', '--url', coordinator.url, '--token', 'bench'],
        runs,
        dir,
      );
    } finally {
      coordinator.child.kill('SIGKILL');
    }
    return {
      runs,
      all_commands: allCommands,
      arbor_help: topHelp,
      status_help: statusHelp,
      admin_help: adminHelp,
      arbor_worker: arborWorker,
      packaged_worker: packaged,
      arbor_help_source: topHelpSource,
      arbor_worker_source: arborWorkerSource,
      status_live: statusLive,
      status_live_source: statusLiveSource,
      status_live_ratio: statusLive.ms / statusLiveSource.ms,
      admin_live: adminLive,
      ms_ratio: arborWorker.ms / allCommands.ms,
      rss_ratio: arborWorker.max_rss_mb / allCommands.max_rss_mb,
      packaged_ms_ratio: packaged.ms / allCommands.ms,
      packaged_rss_ratio: packaged.max_rss_mb / allCommands.max_rss_mb,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
