import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { loadJobData } from '../coordinator/job/job-data.ts';
import { type Comparison, compareRun, describeComparison } from './simulate-compare.ts';
import { DEFAULT_SIMULATION, type SimulationResult, simulate } from '../coordinator/simulate/simulation.ts';
import { type SeedSummary, summarizeSeeds } from '../coordinator/simulate/seed-summary.ts';
import { DEFAULT_MIX } from '../coordinator/simulate/volunteer-mix.ts';
import { selectBackend } from '../shared/backend.ts';
import { accuracyList, integer, positiveNumber } from '../shared/cli-options.ts';
import { createLogger } from '../shared/logging.ts';
import { addJobOptions, jobConfigFromOptions } from './job-flags.ts';

const fraction = (flag: string) => (value: string) => {
  const parsed = positiveNumber(flag)(value);
  if (parsed > 1) throw new InvalidArgumentError(`${flag} must be between 0 and 1, got '${value}'.`);
  return parsed;
};

const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;

function describeTimes(times: Readonly<Record<string, unknown>>): string {
  const parts = Object.entries(times).map(([target, t]) => {
    const seconds = typeof t === 'number' ? t : (t as { mean?: number } | null)?.mean;
    return `${pct(Number(target))} at ${seconds === undefined || seconds === null ? 'never' : `${seconds.toFixed(1)} s`}`;
  });
  return parts.length > 0 ? `; reached ${parts.join(', ')}` : '';
}

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

function describeRun(result: SimulationResult): string {
  return (
    `${result.volunteers} volunteers: hard test accuracy ${pct(result.hard_test_acc)}, ` +
    `${result.virtual_wall_s.toFixed(0)} virtual s, utilization ${pct(result.utilization)}, ` +
    `idle ${pct(result.idle_fraction)}, wasted ${pct(result.wasted_fraction)}, ${result.accepted} accepted, ` +
    `${result.rejected} rejected, mean staleness ${result.mean_staleness?.toFixed(2) ?? 'n/a'}` +
    `${describeTimes(result.time_to_acc)}; blobs at most ${mb(result.blob_bytes.peak)}, ${mb(result.blob_bytes.final)} at the end\n`
  );
}

function describeSeeds(summary: SeedSummary): string {
  const { hard_test_acc: acc, virtual_wall_s: wall } = summary;
  return (
    `mean of ${summary.seeds} seeds: hard test accuracy ${pct(acc.mean)} ± ${pct(acc.sd)}, ` +
    `${wall.mean.toFixed(0)} ± ${wall.sd.toFixed(0)} virtual s, utilization ${pct(summary.utilization.mean)}, ` +
    `wasted ${pct(summary.wasted_fraction.mean)}${describeTimes(summary.time_to_acc)}\n`
  );
}

export function simulateCommand(): Command {
  return addJobOptions(
    new Command('simulate').description(
      'Size a run before inviting people: N simulated volunteers against the real coordinator core on a virtual clock (units are trained for real, one at a time).',
    ),
  )
    .requiredOption('--volunteers <n>', 'simulated volunteers', integer('--volunteers', 1, 100_000))
    .option(
      '--speed <samples/s>',
      'median training speed, samples per virtual second',
      positiveNumber('--speed'),
      DEFAULT_MIX.samplesPerSecond,
    )
    .option(
      '--speed-spread <x>',
      'fastest over slowest volunteer, log-uniform (1 = all alike)',
      positiveNumber('--speed-spread'),
      DEFAULT_MIX.speedSpread,
    )
    .option('--vanish <p>', 'share of volunteers who vanish in the middle of a unit', fraction('--vanish'), 0)
    .option('--leave <p>', 'share of volunteers who stop (Ctrl-C) at some point', fraction('--leave'), 0)
    .option(
      '--cheaters <p>',
      'share of volunteers who cheat: copies, scaled copies, served moves, token and negated deltas',
      fraction('--cheaters'),
      0,
    )
    .option(
      '--leave-within <s>',
      'those who stop or vanish do so within this many virtual seconds of joining',
      positiveNumber('--leave-within'),
      DEFAULT_MIX.leaveWithinSeconds,
    )
    .option(
      '--join-over <s>',
      'volunteers arrive over this many virtual seconds',
      positiveNumber('--join-over'),
      0,
    )
    .option(
      '--crowd-seed <n>',
      'seed of the crowd (speeds, arrivals, departures)',
      integer('--crowd-seed', 0),
      1,
    )
    .option('--no-carry-optimizer', "volunteers start every unit's optimizer afresh")
    .option(
      '--target-acc <list>',
      'report when the served model first reached these accuracies, e.g. 0.85,0.86',
      accuracyList,
      [],
    )
    .option(
      '--curve-every <s>',
      "record the served model's accuracy every this many virtual seconds",
      positiveNumber('--curve-every'),
      DEFAULT_SIMULATION.curveEverySeconds,
    )
    .option(
      '--seeds <n>',
      'run this many times (job and crowd seeds +0, +1, …) and report the mean and spread',
      integer('--seeds', 1, 100),
      1,
    )
    .option('--json', 'print the result as one JSON object')
    .option('--verbose', "log the coordinator's events (default: a progress line, warnings only)")
    .option('--keep <dir>', "keep each run's database and blobs under this directory (default: removed)")
    .option('--no-compare', 'skip the comparison with one volunteer a shard and with the central twin')
    .action(async (opts: Record<string, unknown>) => {
      const log = createLogger('simulate', opts['verbose'] === true ? 'info' : 'warn');
      const progress = opts['verbose'] === true ? undefined : progressLine();
      const config = jobConfigFromOptions(opts);
      await selectBackend('auto');
      const data = await loadJobData(config);
      const seeds = opts['seeds'] as number;
      const runs: SimulationResult[] = [];
      const crowdOf = (volunteers: number, steady: boolean) => ({
        volunteers,
        samplesPerSecond: opts['speed'] as number,
        speedSpread: steady ? 0 : (opts['speedSpread'] as number),
        vanish: steady ? 0 : (opts['vanish'] as number),
        leave: steady ? 0 : (opts['leave'] as number),
        leaveWithinSeconds: opts['leaveWithin'] as number,
        joinOverSeconds: steady ? 0 : (opts['joinOver'] as number),
        seed: opts['crowdSeed'] as number,
        carryOptimizer: opts['carryOptimizer'] !== false,
        cheaters: steady ? 0 : (opts['cheaters'] as number),
      });
      for (let i = 0; i < seeds; i++) {
        const result = await simulate(
          { ...config, seed: config.seed + i },
          data,
          {
            volunteers: opts['volunteers'] as number,
            samplesPerSecond: opts['speed'] as number,
            speedSpread: opts['speedSpread'] as number,
            vanish: opts['vanish'] as number,
            leave: opts['leave'] as number,
            leaveWithinSeconds: opts['leaveWithin'] as number,
            joinOverSeconds: opts['joinOver'] as number,
            seed: (opts['crowdSeed'] as number) + i,
            carryOptimizer: opts['carryOptimizer'] !== false,
            cheaters: opts['cheaters'] as number,
          },
          log,
          typeof opts['keep'] === 'string' ? keptRun(opts['keep'], i) : undefined,
          {
            curveEverySeconds: opts['curveEvery'] as number,
            targets: opts['targetAcc'] as number[],
            ...(progress !== undefined ? { onProgress: progress.show(i, seeds) } : {}),
          },
        );
        progress?.clear();
        runs.push(result);
        if (!opts['json']) process.stdout.write(describeRun(result));
      }
      if (!opts['json'] && seeds > 1) process.stdout.write(describeSeeds(summarizeSeeds(runs)));
      let comparison: Comparison | undefined;
      if (opts['compare'] !== false) {
        if (!opts['json']) process.stderr.write('comparing: one volunteer a shard, then the central twin…\n');
        comparison = await compareRun(config, data, runs[0]!, async (volunteers) => {
          const steady = await simulate(config, data, crowdOf(volunteers, true), log, undefined, {
            curveEverySeconds: opts['curveEvery'] as number,
            targets: [],
            ...(progress !== undefined ? { onProgress: progress.show(0, 1) } : {}),
          });
          progress?.clear();
          return steady;
        });
        if (!opts['json']) process.stdout.write(describeComparison(comparison));
      }
      if (opts['json'])
        process.stdout.write(
          `${JSON.stringify({ ...(seeds === 1 ? runs[0] : summarizeSeeds(runs)), ...(comparison ? { comparison } : {}) })}\n`,
        );
    });
}

/** Where run `seed` of `arbor simulate --keep DIR` keeps its database and blobs. */
function keptRun(dir: string, seed: number): string {
  const path = join(resolve(dir), `seed-${seed}`);
  mkdirSync(path, { recursive: true });
  return path;
}

/**
 * One line on stderr that says how far the run is, rewritten at most every 200 ms on a
 * terminal, and every tenth of the job elsewhere.
 */
function progressLine(): {
  show(seed: number, seeds: number): (virtualMs: number, fraction: number) => void;
  clear(): void;
} {
  const tty = process.stderr.isTTY;
  let shownAt = 0;
  let shownTenth = -1;
  return {
    show: (seed, seeds) => (virtualMs, fraction) => {
      const now = performance.now();
      const tenth = Math.floor(fraction * 10);
      if (tty ? now - shownAt < 200 : tenth === shownTenth) return;
      shownAt = now;
      shownTenth = tenth;
      const run = seeds > 1 ? `run ${seed + 1} of ${seeds}: ` : '';
      const text = `simulating: ${run}${(fraction * 100).toFixed(0)}% trained, ${(virtualMs / 1000).toFixed(0)} virtual s`;
      process.stderr.write(tty ? `\r${text}\x1b[K` : `${text}\n`);
    },
    clear: () => {
      if (tty) process.stderr.write('\r\x1b[K');
      shownTenth = -1;
    },
  };
}
