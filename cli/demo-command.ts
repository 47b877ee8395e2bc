import { rmSync } from 'node:fs';
import { Command } from 'commander';
import { trainCentralTwin } from '../coordinator/job/central-twin.ts';
import { loadJobData } from '../coordinator/job/job-data.ts';
import { runLocalCluster } from './local-cluster.ts';
import type { RunningCoordinator } from '../coordinator/main.ts';
import { selectBackend } from '../shared/backend.ts';
import { createLogger } from '../shared/logging.ts';
import { addJobOptions, jobConfigFromOptions } from './job-flags.ts';
import { integer } from '../shared/cli-options.ts';

const percent = (fraction: number): string => `${(fraction * 100).toFixed(2)}%`;

/** One line per evaluation of the assembled model, while the job runs. */
function reportEvaluations(coordinator: RunningCoordinator, write: (line: string) => void): () => void {
  let seen = 0;
  const timer = setInterval(() => {
    const evals = coordinator.store.listEvals();
    const shards = coordinator.store.listShards();
    const budget = shards.reduce((sum, s) => sum + s.budgetSamples, 0);
    const trained = shards.reduce((sum, s) => sum + Math.min(s.trainedSamples, s.budgetSamples), 0);
    for (const row of evals.slice(seen))
      write(
        `  ${percent(budget ? trained / budget : 0).padStart(7)} of the budget trained: ` +
          `hard test accuracy ${percent(row.hardTestAcc)} after ${row.accepted} merged results\n`,
      );
    seen = evals.length;
  }, 500);
  return () => clearInterval(timer);
}

export function demoCommand(): Command {
  return addJobOptions(
    new Command('demo').description(
      'A coordinator and worker processes on this machine train an FFF on the embedded MNIST to completion, then the central twin (arbor train, same model and budget) for comparison.',
    ),
  )
    .option('--workers <n>', 'worker processes', integer('--workers', 1, 64), 2)
    .option('--port <n>', 'coordinator port (0 = any free port)', integer('--port', 0, 65535), 0)
    .option(
      '--dir <path>',
      'keep the database, blobs and final model here (default: a temporary folder, removed at the end)',
    )
    .option('--serve', 'keep serving the dashboard after the demo, until Ctrl-C')
    .option('--no-central', 'skip the central twin')
    .option('--json', 'print one JSON object on stdout')
    .action(async (opts: Record<string, unknown>) => {
      const log = createLogger('demo', process.env['ARBOR_LOG_LEVEL'] ?? 'warn');
      const config = jobConfigFromOptions(opts);
      await selectBackend('auto', false);
      const data = await loadJobData(config);
      const json = opts['json'] === true;
      const say = (line: string) => {
        if (!json) process.stdout.write(line);
      };
      const shards = 2 ** config.frozen;
      say(
        `arbor demo: ${data.train.n} ${config.data} training samples, FFF depth ${config.depth} ` +
          `(top ${config.frozen} levels frozen, ${shards} shards), leaf width ${config.leaf}, ${opts['workers'] as number} workers\n`,
      );
      let stopReporting = () => undefined as void;
      const cluster = await runLocalCluster({
        config,
        data,
        workers: opts['workers'] as number,
        port: opts['port'] as number,
        ...(typeof opts['dir'] === 'string' ? { dir: opts['dir'] } : {}),
        log,
        onListening: (url) => {
          say(
            `dashboard: ${url}  (more workers on this machine: npx arbor worker --url ${url.replace(/^http/, 'ws')})\n`,
          );
          say('pretraining the top of the tree, then the workers train the shards…\n');
        },
        onStarted: (coordinator) => {
          stopReporting = reportEvaluations(coordinator, say);
        },
      });
      stopReporting();
      const keep = typeof opts['dir'] === 'string';
      say(
        `distributed: hard test accuracy ${percent(cluster.final.hardTestAcc)} in ${cluster.wallSeconds.toFixed(0)} s; ` +
          (keep
            ? `model ${cluster.coordinator.job.finalModelPath}\n`
            : '(pass --dir DIR to keep the model and the database)\n'),
      );
      let central = null;
      if (opts['central'] === true) {
        say(
          'central twin (arbor train, same model and budget; the dashboard stays up until the demo ends)…\n',
        );
        central = await trainCentralTwin(config, data);
        cluster.coordinator.read.setCentralReference(central.hardTestAcc);
        say(
          `central twin: hard test accuracy ${percent(central.hardTestAcc)} in ${central.wallSeconds.toFixed(0)} s\n`,
        );
      }
      if (opts['serve'] === true) {
        say(`dashboard still at ${cluster.coordinator.url}; Ctrl-C to stop\n`);
        await new Promise((resolve) => process.once('SIGINT', resolve));
      }
      await cluster.coordinator.close();
      if (!keep) rmSync(cluster.dir, { recursive: true, force: true });
      if (json)
        process.stdout.write(
          `${JSON.stringify({
            dist_hard_test_acc: cluster.final.hardTestAcc,
            dist_wall_s: cluster.wallSeconds,
            central_hard_test_acc: central?.hardTestAcc ?? null,
            central_wall_s: central?.wallSeconds ?? null,
            final_model: keep ? cluster.coordinator.job.finalModelPath : null,
          })}\n`,
        );
    });
}
