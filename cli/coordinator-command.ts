import { Command, InvalidArgumentError, Option } from 'commander';
import { hostname } from 'node:os';
import { type RunningCoordinator, startCoordinator } from '../coordinator/main.ts';
import { joinCommand } from '../proto/dashboard.ts';
import { ROUTES } from '../proto/routes.ts';
import { BACKEND_CHOICES, type BackendChoice, selectBackend } from '../shared/backend.ts';
import { createLogger } from '../shared/logging.ts';
import { integer } from '../shared/cli-options.ts';
import { addJobOptions, jobConfigFromOptions, requestedJobSettings } from './job-flags.ts';

/**
 * Where volunteers reach this coordinator: `--public-url` when given (a proxy, a DNS name),
 * else the address it listens on, with this machine's name when that is every address.
 */
function publicBase(coordinator: RunningCoordinator, host: string, publicUrl?: string): string {
  const url = new URL(publicUrl ?? coordinator.url);
  if (publicUrl === undefined && (host === '0.0.0.0' || host === '::')) url.hostname = hostname();
  return url.toString().replace(/\/$/, '');
}

/** The one-line volunteer install. */
async function announceJoinCommand(coordinator: RunningCoordinator, base: string, enrolment: boolean) {
  try {
    const pkg = await coordinator.workerPackage();
    const command = joinCommand(base, {
      package_path: ROUTES.workerPackagePinned.path(pkg.sha256),
      version: pkg.version,
      token_required: coordinator.core.identify(undefined) === undefined,
      enrolment,
      error: null,
    });
    process.stdout.write(`volunteers join with: ${command}\n`);
  } catch {
    // The coordinator has logged why; volunteers can still use a clone of the repository.
  }
}

export function coordinatorCommand(): Command {
  return addJobOptions(
    new Command('coordinator').description(
      'Run a training job: pretrain, freeze the top, route samples to shards, hand shards to workers, merge, evaluate.',
    ),
  )
    .option(
      '--db <file>',
      'SQLite database (blobs go to <file>.blobs/); reopening it resumes the job',
      'arbor.db',
    )
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option(
      '--public-url <url>',
      'where volunteers reach this coordinator, for the join command it prints (e.g. https://arbor.example.org behind a proxy)',
      publicUrlOption,
    )
    .option('--port <n>', 'port (0 = any free port)', integer('--port', 0, 65535), 7070)
    .option('--token <secret>', 'workers must present this token (default: $ARBOR_TOKEN, else open)')
    .option(
      '--admin-token <secret>',
      'the operator token for /v1/admin (pause, resume, cancel, revoke, model) (default: $ARBOR_ADMIN_TOKEN)',
    )
    .option(
      '--read-token <secret>',
      'the dashboard data and /metrics need this token (default: $ARBOR_READ_TOKEN, else open)',
    )
    .addOption(
      new Option('--enrolment <mode>', 'open: a volunteer without a token is issued one (rate-limited)')
        .choices(['closed', 'open'])
        .default('closed'),
    )
    .option('--out <file>', 'final model (default: arbor-final.safetensors beside the database)')
    .addOption(
      new Option('--backend <name>', 'tensor backend for pretraining')
        .choices(BACKEND_CHOICES)
        .default('auto'),
    )
    .option('--exit-when-done', 'exit once the job is done (default: keep serving the dashboard)')
    .option('--json', 'print the final result as one JSON object on stdout')
    .action(async (opts: Record<string, unknown>) => {
      const log = createLogger('coordinator');
      const config = jobConfigFromOptions(opts);
      const backend = await selectBackend(opts['backend'] as BackendChoice, false);
      log.info({ backend: backend.name }, 'tensor backend selected');
      const token = (opts['token'] as string | undefined) ?? process.env['ARBOR_TOKEN'];
      const adminToken = (opts['adminToken'] as string | undefined) ?? process.env['ARBOR_ADMIN_TOKEN'];
      const readToken = (opts['readToken'] as string | undefined) ?? process.env['ARBOR_READ_TOKEN'];
      const enrolment = opts['enrolment'] === 'open';
      const coordinator = await startCoordinator({
        config,
        requested: requestedJobSettings(opts),
        dbPath: opts['db'] as string,
        host: opts['host'] as string,
        port: opts['port'] as number,
        log,
        ...(token ? { token } : {}),
        ...(adminToken ? { adminToken } : {}),
        ...(readToken ? { readToken } : {}),
        enrolment,
        ...(typeof opts['out'] === 'string' ? { finalModelPath: opts['out'] } : {}),
      });
      const base = publicBase(coordinator, opts['host'] as string, opts['publicUrl'] as string | undefined);
      const ws = base.replace(/^http/, 'ws');
      process.stdout.write(
        `arbor coordinator listening on ${coordinator.url} (workers: arbor worker --url ${ws})\n`,
      );
      void announceJoinCommand(coordinator, base, enrolment);
      const stop = async () => {
        await coordinator.close();
        process.exit(130);
      };
      process.once('SIGINT', () => void stop());
      process.once('SIGTERM', () => void stop());
      const final = await coordinator.done;
      const summary = {
        hard_test_acc: final.hardTestAcc,
        val_loss: final.valLoss,
        accepted: final.accepted,
        final_model: coordinator.job.finalModelPath,
      };
      process.stdout.write(
        opts['json']
          ? `${JSON.stringify(summary)}\n`
          : `job done: hard test accuracy ${(final.hardTestAcc * 100).toFixed(2)}%, model ${summary.final_model}\n`,
      );
      if (opts['exitWhenDone']) {
        // Long enough for a volunteer in its longest reconnect backoff (30 s) to hear it.
        await coordinator.workersGone(40_000);
        await coordinator.close();
        return;
      }
      await new Promise(() => undefined);
    });
}

/** `--public-url`: an http(s) or ws(s) address with a host, kept as http(s). */
function publicUrlOption(text: string): string {
  const url = URL.canParse(text) ? new URL(text) : undefined;
  if (url === undefined || !['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol) || url.hostname === '')
    throw new InvalidArgumentError(`--public-url must look like https://HOST[:PORT], got "${text}"`);
  url.protocol = url.protocol === 'wss:' || url.protocol === 'https:' ? 'https:' : 'http:';
  return url.toString().replace(/\/$/, '');
}
