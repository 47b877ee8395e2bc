import { Command, InvalidArgumentError, Option } from 'commander';
import { hostname } from 'node:os';
import { type RunningCoordinator, startCoordinator } from '../coordinator/main.ts';
import { joinCommand } from '../proto/dashboard.ts';
import { ROUTES } from '../proto/routes.ts';
import {
  type JobConfig,
  JobConfigSchema,
  overlay,
  parseJobConfig,
  readJobConfigFile,
} from '../coordinator/job/config.ts';
import { parseUntil } from '../coordinator/job/job-goal.ts';
import { BACKEND_CHOICES, type BackendChoice, selectBackend } from '../shared/backend.ts';
import { DATA_SPECS_HELP } from '../shared/data/load.ts';
import { ACTIVATIONS } from '../shared/fff/weights.ts';
import { createLogger } from '../shared/logging.ts';
import { integer, positiveNumber } from '../shared/cli-options.ts';

/** Flag name -> dotted job-config key. */
const JOB_FLAGS = {
  data: 'data',
  dataDir: 'data_dir',
  label: 'label',
  depth: 'depth',
  frozen: 'frozen',
  leaf: 'leaf',
  activation: 'activation',
  hardening: 'hardening',
  lr: 'lr',
  batch: 'batch',
  leak: 'leak',
  seed: 'seed',
  pretrainMode: 'pretrain.mode',
  pretrainEpochs: 'pretrain.epochs',
  pretrainLeaf: 'pretrain.leaf',
  pretrainSamples: 'pretrain.max_samples',
  balance: 'pretrain.balance',
  shardEpochs: 'shard_epochs',
  localEpochs: 'local_epochs',
  unitSeconds: 'unit_seconds',
  inFlightSpan: 'in_flight_span',
  maxPeers: 'max_peers',
  outerStrategy: 'outer.strategy',
  outerLr: 'outer.lr',
  outerRound: 'outer.round',
  outerMomentum: 'outer.momentum',
  stalenessDiscount: 'outer.staleness_discount',
  maxStaleness: 'outer.max_staleness',
  staleCorrection: 'outer.stale_correction',
  top: 'top.mode',
  topLr: 'top.lr',
  rerouteEvery: 'top.reroute_every',
  valFraction: 'validation.fraction',
  valTolerance: 'validation.tolerance',
  quorum: 'validation.quorum',
  until: 'until',
  evalEvery: 'eval_every',
  leaseMs: 'lease_ms',
  heartbeatMs: 'heartbeat_ms',
} as const;

function untilGoal(value: string): JobConfig['until'] {
  try {
    return parseUntil(value);
  } catch (error) {
    throw new InvalidArgumentError(`--until: ${(error as Error).message}.`);
  }
}

/** The schema's default of a dotted job setting, as help text shows it. */
function schemaDefault(dotted: string): unknown {
  let schema: unknown = JobConfigSchema;
  for (const key of dotted.split('.'))
    schema = (schema as { properties?: Record<string, unknown> }).properties?.[key];
  return (schema as { default?: unknown } | undefined)?.default;
}

/** A default as typed on the command line: `0.1,0.05` for a list, `none` for an empty goal. */
function shownDefault(value: unknown): string {
  if (Array.isArray(value)) return value.join(',');
  if (typeof value === 'object' && value !== null && Object.keys(value).length === 0) return 'none';
  return JSON.stringify(value).replace(/^"(.*)"$/, '$1');
}

/** Appends each job flag's default (the job schema's, or the command's own) to its help. */
function showJobDefaults(command: Command, own: Readonly<Record<string, unknown>>): Command {
  for (const option of command.options) {
    const key = (JOB_FLAGS as Record<string, string>)[option.attributeName()];
    if (key === undefined) continue;
    const value = own[key] ?? schemaDefault(key);
    if (value !== undefined) option.description += ` (default: ${shownDefault(value)})`;
  }
  return command;
}

/**
 * The job flags shared by `arbor coordinator`, `arbor demo` and `arbor bench distributed`;
 * `own` names the defaults a command uses instead of the schema's, for the help text.
 */
export function addJobOptions(command: Command, own: Readonly<Record<string, unknown>> = {}): Command {
  return showJobDefaults(withJobOptions(command), own);
}

function withJobOptions(command: Command): Command {
  return command
    .option('--config <file>', 'job settings as JSON (flags override it)')
    .option('--data <spec>', `dataset: ${DATA_SPECS_HELP}`)
    .option('--data-dir <dir>', 'directory of the IDX files for --data fashion-mnist')
    .option('--label <column>', 'label column for --data csv:PATH')
    .option('--depth <D>', 'tree depth', integer('--depth', 2, 16))
    .option('--frozen <K>', 'frozen top levels: 2^K shards', integer('--frozen', 1, 12))
    .option('--leaf <L>', 'leaf width', integer('--leaf', 1, 4096))
    .addOption(new Option('--activation <fn>', 'leaf activation').choices(ACTIVATIONS))
    .option('--hardening <h>', 'decision-entropy weight', positiveNumber('--hardening'))
    .option('--lr <rate>', 'learning rate (pretraining and local)', positiveNumber('--lr'))
    .option('--batch <n>', 'minibatch size (default: chosen per run for ~7,000 steps)', integer('--batch', 1))
    .option('--leak <p>', 'region leak probability in local training', positiveNumber('--leak'))
    .option('--seed <n>', 'random seed', integer('--seed', 0))
    .addOption(
      new Option('--pretrain-mode <mode>', 'what pretraining trains').choices([
        'auto',
        'top',
        'full',
        'levels',
      ]),
    )
    .option('--pretrain-epochs <n>', 'pretraining epochs', integer('--pretrain-epochs', 1))
    .option(
      '--pretrain-leaf <L>',
      "leaf width of the temporary tree in 'top' mode",
      integer('--pretrain-leaf', 1),
    )
    .option(
      '--pretrain-samples <n>',
      'pretrain on at most this many samples',
      integer('--pretrain-samples', 1),
    )
    .option('--balance <w>', 'routing-balance weight in pretraining', positiveNumber('--balance'))
    .option('--shard-epochs <n>', 'budget: passes over each shard', integer('--shard-epochs', 1))
    .option(
      '--local-epochs <n>',
      'most passes over the shard in one work unit (no more than --shard-epochs unless given)',
      integer('--local-epochs', 1),
    )
    .option(
      '--unit-seconds <s>',
      "a unit is sized to take about this long on its worker's measured speed",
      positiveNumber('--unit-seconds'),
    )
    .option(
      '--in-flight-span <f>',
      'units of one shard trained at once span at most this share of its schedule',
      positiveNumber('--in-flight-span'),
    )
    .option(
      '--max-peers <n>',
      'most units of one shard trained at once; further volunteers wait (a larger crowd wants more shards)',
      integer('--max-peers', 1),
    )
    .addOption(
      new Option(
        '--outer-strategy <name>',
        "how a shard's concurrent deltas merge: each whole ('sum'), averaged with delayed Nesterov, or buffered ('fedbuff')",
      ).choices(['sum', 'delayed-nesterov', 'fedbuff']),
    )
    .option('--outer-lr <rate>', 'outer learning rate', positiveNumber('--outer-lr'))
    .option(
      '--outer-round <W>',
      "averaged strategies: results averaged into one step; a shard's volunteers beyond W make its schedule go faster",
      integer('--outer-round', 1),
    )
    .option('--outer-momentum <m>', 'outer Nesterov momentum', positiveNumber('--outer-momentum'))
    .option(
      '--staleness-discount <f>',
      'weight factor per version of staleness',
      positiveNumber('--staleness-discount'),
    )
    .option('--max-staleness <n>', 'reject staler deltas', integer('--max-staleness', 0))
    .addOption(
      new Option('--stale-correction <how>', 'what a stale delta loses before it is merged').choices([
        'none',
        'project',
      ]),
    )
    .addOption(
      new Option('--top <mode>', "the top K levels: 'frozen' after pretraining, or trained 'slow'ly").choices(
        ['frozen', 'slow'],
      ),
    )
    .option('--top-lr <rates>', 'slow top: rate per level from the root, comma-separated', rateList)
    .option('--reroute-every <n>', 'slow top: top updates between re-routes', integer('--reroute-every', 1))
    .option(
      '--val-fraction <f>',
      'share of each shard held out for validation',
      positiveNumber('--val-fraction'),
    )
    .option(
      '--val-tolerance <f>',
      'allowed relative rise of validation loss',
      positiveNumber('--val-tolerance'),
    )
    .option(
      '--quorum <n>',
      '2: every unit is computed by two workers and merged only if their deltas agree',
      integer('--quorum', 1, 2),
    )
    .option(
      '--until <goal>',
      "end the job when the goal holds (every shard's schedule ends it anyway): acc:ACCURACY, time:SECONDS (since the job began), plateau[:EVALUATIONS]; comma-separated for the first of several",
      untilGoal,
    )
    .option('--eval-every <n>', 'evaluate after this many accepted results', integer('--eval-every', 1))
    .option('--lease-ms <ms>', 'lease length', integer('--lease-ms', 100))
    .option('--heartbeat-ms <ms>', 'worker heartbeat interval', integer('--heartbeat-ms', 50));
}

/** The job settings the user gave (--config, then the job flags over it), before defaults. */
export function requestedJobSettings(opts: Record<string, unknown>): Record<string, unknown> {
  const base = typeof opts['config'] === 'string' ? readJobConfigFile(opts['config']) : {};
  const overrides: Record<string, unknown> = {};
  for (const [flag, key] of Object.entries(JOB_FLAGS)) overrides[key] = opts[flag];
  return overlay(base, overrides);
}

/** The job config from --config and the job flags, validated. */
export function jobConfigFromOptions(opts: Record<string, unknown>) {
  return parseJobConfig(
    requestedJobSettings(opts),
    typeof opts['config'] === 'string' ? opts['config'] : 'flags',
  );
}

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

function rateList(text: string): number[] {
  const rates = text.split(',').map(Number);
  if (rates.length === 0 || rates.some((rate) => !Number.isFinite(rate) || rate < 0))
    throw new InvalidArgumentError(`--top-lr takes non-negative numbers separated by commas, got "${text}"`);
  return rates;
}

/** `--public-url`: an http(s) or ws(s) address with a host, kept as http(s). */
function publicUrlOption(text: string): string {
  const url = URL.canParse(text) ? new URL(text) : undefined;
  if (url === undefined || !['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol) || url.hostname === '')
    throw new InvalidArgumentError(`--public-url must look like https://HOST[:PORT], got "${text}"`);
  url.protocol = url.protocol === 'wss:' || url.protocol === 'https:' ? 'https:' : 'http:';
  return url.toString().replace(/\/$/, '');
}
