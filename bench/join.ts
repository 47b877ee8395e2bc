/**
 * A new volunteer's first minutes: a coordinator process on the default job (the embedded
 * MNIST), then the join command it prints, run with Node alone from an empty home (no npm,
 * no registry, nothing of this checkout), then the repository's `arbor worker` as the
 * baseline. For each: megabytes fetched, time to the first unit's training, time to its first
 * accepted unit, training speed over its units and CPU share over its life; and the
 * repository's worker again with `--max-cpu 50`.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Join, joinCommand } from '../proto/dashboard.ts';
import { defaultJobCoordinator } from './helpers/default-coordinator.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

export interface VolunteerStart {
  /** Megabytes the join script fetched (0 for the repository's worker). */
  readonly fetched_mb: number;
  /** From the command's start to its first unit's training. */
  readonly to_training_ms: number;
  readonly to_first_accepted_ms: number;
  /** Samples trained per second of training, over its units. */
  readonly samples_per_s: number;
  readonly backend: string;
  /** The process's CPU time over its life, in cores (1 = one core all the time). */
  readonly cpu_share: number;
}

export interface JoinResult {
  readonly units: number;
  readonly joined: VolunteerStart;
  readonly repository_worker: VolunteerStart;
  /** The repository's worker with `--max-cpu 50`. */
  readonly half_cpu_worker: VolunteerStart;
  /** joined / repository_worker */
  readonly speed_ratio: number;
  /** half_cpu_worker / repository_worker */
  readonly cpu_share_ratio: number;
}

interface LogLine {
  readonly msg?: string;
  readonly backend?: string;
  readonly verdict?: string;
  readonly samples?: number;
  readonly seconds?: number;
}

/** Runs a volunteer to its end, reading its JSON log lines as they come. */
function runVolunteer(
  program: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<VolunteerStart> {
  const started = performance.now();
  const report = join(mkdtempSync(join(tmpdir(), 'arbor-join-report-')), 'exit.jsonl');
  const child = spawn(program, ['--import', join(root, 'bench/helpers/exit-report.mjs'), ...args], {
    cwd: mkdtempSync(join(tmpdir(), 'arbor-join-cwd-')),
    env: { ...env, ARBOR_EXIT_REPORT: report },
  });
  let backend = '';
  let fetched = 0;
  let training: number | undefined;
  let accepted: number | undefined;
  let samples = 0;
  let seconds = 0;
  let pending = '';
  child.stderr.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const text of lines) {
      const megabytes = /fetched from \S+ \(([\d.]+) MB\)/.exec(text);
      if (megabytes) fetched = Number(megabytes[1]);
      if (!text.startsWith('{')) continue;
      const line = JSON.parse(text) as LogLine;
      if (line.msg === 'ready') backend = line.backend ?? '';
      if (line.msg === 'training unit') training ??= performance.now() - started;
      if (line.msg === 'unit finished' && line.verdict === 'accepted') {
        accepted ??= performance.now() - started;
        samples += line.samples ?? 0;
        seconds += line.seconds ?? 0;
      }
    }
  });
  child.stdout.resume();
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      if (code !== 0 || training === undefined || accepted === undefined)
        return reject(
          new Error(`${program} ${args.slice(0, 2).join(' ')} ended with ${code}: nothing accepted`),
        );
      const usage = JSON.parse(readFileSync(report, 'utf8').trim()) as { ms: number; cpu_ms: number };
      resolve({
        cpu_share: Number((usage.cpu_ms / usage.ms).toFixed(2)),
        fetched_mb: fetched,
        to_training_ms: Math.round(training),
        to_first_accepted_ms: Math.round(accepted),
        samples_per_s: Math.round(samples / Math.max(seconds, 1e-9)),
        backend,
      });
    });
  });
}

export async function benchJoin(units: number): Promise<JoinResult> {
  const dir = mkdtempSync(join(tmpdir(), 'arbor-bench-join-'));
  const { child, url } = await defaultJobCoordinator(dir);
  try {
    const joinInfo = (await (await fetch(`${url}/v1/join`)).json()) as Join;
    const command = joinCommand(url, joinInfo);
    const parsed = command === null ? null : /^node -e "(.*)" -- (.*)$/.exec(command);
    if (parsed === null) throw new Error(`no join command: ${JSON.stringify(joinInfo)}`);
    const volunteerArgs = ['--max-units', String(units), '--name'];
    const env = { ...process.env, ARBOR_LOG_FORMAT: 'json', NODE_PATH: '', NODE_OPTIONS: '' };
    const joined = await runVolunteer(
      process.execPath,
      ['-e', parsed[1]!, '--', ...parsed[2]!.split(' '), ...volunteerArgs, 'joined'],
      { ...env, HOME: mkdtempSync(join(dir, 'home-')), npm_config_registry: 'http://127.0.0.1:1/' },
    );
    const repository = await runVolunteer(
      process.execPath,
      [join(root, 'bin/arbor.js'), 'worker', '--url', url.replace(/^http/, 'ws'), ...volunteerArgs, 'clone'],
      env,
    );
    const halfCpu = await runVolunteer(
      process.execPath,
      [
        join(root, 'bin/arbor.js'),
        'worker',
        '--url',
        url.replace(/^http/, 'ws'),
        ...volunteerArgs,
        'half',
        '--max-cpu',
        '50',
      ],
      env,
    );
    return {
      units,
      joined,
      repository_worker: repository,
      half_cpu_worker: halfCpu,
      speed_ratio: Number((joined.samples_per_s / repository.samples_per_s).toFixed(3)),
      cpu_share_ratio: Number((halfCpu.cpu_share / repository.cpu_share).toFixed(3)),
    };
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
