import { hostname } from 'node:os';
import cliProgress from 'cli-progress';
import { Command, Option } from 'commander';
import { BACKEND_CHOICES, type BackendChoice, selectBackend } from '../shared/backend.ts';
import { createLogger } from '../shared/logging.ts';
import { measureTrainingSpeed } from '../worker/speed-probe.ts';
import { runWorker } from '../worker/run-worker.ts';
import { integer } from './options.ts';

export function workerCommand(): Command {
  return new Command('worker')
    .description('Volunteer: connect to a coordinator, train the subtrees it hands out, send back deltas.')
    .requiredOption('--url <ws-url>', 'coordinator address, e.g. ws://127.0.0.1:7070')
    .option('--token <secret>', 'token the coordinator requires (default: $ARBOR_TOKEN)')
    .option('--name <name>', 'name shown on the dashboard', `${hostname()}-${process.pid}`)
    .addOption(new Option('--backend <name>', 'tensor backend').choices(BACKEND_CHOICES).default('auto'))
    .option('--gpu', 'prefer the native GPU backend (@tensorflow/tfjs-node-gpu)', false)
    .option('--max-units <n>', 'stop after this many units', integer('--max-units', 1))
    .option('--cache-dir <dir>', 'keep downloaded blobs here across runs')
    .action(
      async (opts: {
        url: string;
        token?: string;
        name: string;
        backend: BackendChoice;
        gpu: boolean;
        maxUnits?: number;
        cacheDir?: string;
      }) => {
        const log = createLogger('worker');
        const backend = await selectBackend(opts.backend, opts.gpu);
        const samplesPerSecond = await measureTrainingSpeed();
        log.info({ backend: backend.name, samples_per_s: Math.round(samplesPerSecond) }, 'ready');
        const controller = new AbortController();
        process.once('SIGINT', () => {
          log.info('stopping: handing the current unit back');
          controller.abort();
          process.once('SIGINT', () => process.exit(130));
        });
        process.once('SIGTERM', () => controller.abort());
        const bar = process.stderr.isTTY
          ? new cliProgress.SingleBar(
              {
                format: 'unit {unit} [{bar}] {percentage}% | loss {loss} | ETA {eta}s',
                stream: process.stderr,
              },
              cliProgress.Presets.shades_classic,
            )
          : undefined;
        let barUnit = '';
        const token = opts.token ?? process.env['ARBOR_TOKEN'];
        const summary = await runWorker({
          url: opts.url,
          ...(token ? { token } : {}),
          name: opts.name,
          backend: backend.name,
          gpu: backend.gpu,
          threads: backend.threads,
          samplesPerSecond,
          ...(opts.maxUnits !== undefined ? { maxUnits: opts.maxUnits } : {}),
          ...(opts.cacheDir !== undefined ? { cacheDir: opts.cacheDir } : {}),
          log,
          signal: controller.signal,
          ...(bar
            ? {
                onUnitProgress: (unit, report, totalSteps) => {
                  const done = report.epoch * report.stepsPerEpoch + report.stepInEpoch;
                  const payload = { unit: unit.unit_id, loss: report.loss.toFixed(4) };
                  if (barUnit !== unit.unit_id) {
                    if (barUnit !== '') bar.stop();
                    bar.start(totalSteps, done, payload);
                    barUnit = unit.unit_id;
                  } else bar.update(done, payload);
                },
              }
            : {}),
        });
        bar?.stop();
        log.info(summary, 'worker finished');
      },
    );
}
