import { Command, InvalidArgumentError } from 'commander';
import { loadJobData } from '../coordinator/job/job-data.ts';
import { simulate } from '../coordinator/simulate/simulation.ts';
import { DEFAULT_MIX } from '../coordinator/simulate/volunteer-mix.ts';
import { selectBackend } from '../shared/backend.ts';
import { integer, positiveNumber } from '../shared/cli-options.ts';
import { createLogger } from '../shared/logging.ts';
import { addJobOptions, jobConfigFromOptions } from './coordinator-command.ts';

const fraction = (flag: string) => (value: string) => {
  const parsed = positiveNumber(flag)(value);
  if (parsed > 1) throw new InvalidArgumentError(`${flag} must be between 0 and 1, got '${value}'.`);
  return parsed;
};

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
    .option('--json', 'print the result as one JSON object')
    .action(async (opts: Record<string, unknown>) => {
      const log = createLogger('simulate');
      const config = jobConfigFromOptions(opts);
      await selectBackend('auto');
      const data = await loadJobData(config);
      const result = await simulate(
        config,
        data,
        {
          volunteers: opts['volunteers'] as number,
          samplesPerSecond: opts['speed'] as number,
          speedSpread: opts['speedSpread'] as number,
          vanish: opts['vanish'] as number,
          leave: opts['leave'] as number,
          leaveWithinSeconds: opts['leaveWithin'] as number,
          joinOverSeconds: opts['joinOver'] as number,
          seed: opts['crowdSeed'] as number,
          carryOptimizer: opts['carryOptimizer'] !== false,
        },
        log,
      );
      process.stdout.write(
        opts['json']
          ? `${JSON.stringify(result)}\n`
          : `${result.volunteers} volunteers: hard test accuracy ${(result.hard_test_acc * 100).toFixed(2)}%, ` +
              `${result.virtual_wall_s.toFixed(0)} virtual s, utilization ${(result.utilization * 100).toFixed(1)}%, ` +
              `wasted ${(result.wasted_fraction * 100).toFixed(1)}%, ${result.accepted} accepted, ` +
              `${result.rejected} rejected, mean staleness ${result.mean_staleness?.toFixed(2) ?? 'n/a'}\n`,
      );
    });
}
