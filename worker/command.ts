import { Command, InvalidArgumentError, Option } from 'commander';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { BACKEND_CHOICES, type BackendChoice } from '../shared/backend.ts';
import { integer } from '../shared/cli-options.ts';
import { createLogger } from '../shared/logging.ts';
import { DEFAULT_TOKEN_FILE, enrolledToken } from './enrolment.ts';
import { chooseWorkerBackend, limitThreads, trainingThreads } from './backend-choice.ts';
import { DEFAULT_MAX_CACHE_MB } from './cache-trim.ts';
import { othersLoadSampler } from './machine-load.ts';
import { Pacer } from './pacer.ts';
import { WakeWatch } from './wake-watch.ts';
import { runWorker } from './run-worker.ts';
import { systemdUnit } from './service-unit.ts';
import { DEFAULT_ARBOR_HOME, stableWorkerName } from './stable-name.ts';
import { TerminalProgress } from './terminal-progress.ts';

/** `ws://H:P`, `wss://…`, or the dashboard's `http(s)://` address; anything else fails at once. */
export function coordinatorUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`--url must look like ws://HOST:PORT, got '${value}'.`);
  }
  const schemes: Record<string, string> = { 'ws:': 'ws:', 'wss:': 'wss:', 'http:': 'ws:', 'https:': 'wss:' };
  const scheme = schemes[url.protocol];
  if (scheme === undefined || url.hostname === '')
    throw new InvalidArgumentError(`--url must look like ws://HOST:PORT, got '${value}'.`);
  url.protocol = scheme;
  return url.toString().replace(/\/$/, '');
}

/** The volunteer's command: `arbor worker` in the repository, `arbor-worker` in the package. */
export function workerCommand(name = 'worker'): Command {
  return new Command(name)
    .description('Volunteer: connect to a coordinator, train the subtrees it hands out, send back deltas.')
    .requiredOption('--url <ws-url>', 'coordinator address, e.g. ws://127.0.0.1:7070', coordinatorUrl)
    .option('--token <secret>', 'token the coordinator requires (default: $ARBOR_TOKEN)')
    .option(
      '--name <name>',
      "name shown on the dashboard (default: this machine's name and a suffix kept in --cache-dir or ~/.arbor, so credit follows restarts)",
    )
    .addOption(
      new Option('--backend <name>', 'tensor backend (auto: the fastest measured here)')
        .choices(BACKEND_CHOICES)
        .default('auto'),
    )
    .option(
      '--gpu',
      'use the best GPU path there is: webgpu (Dawn), then @tensorflow/tfjs-node-gpu (CUDA); else the CPU',
    )
    .option('--max-units <n>', 'stop after this many units', integer('--max-units', 1))
    .option(
      '--threads <n>',
      'most threads training uses (native TensorFlow; wasm in Node trains on one) (default: all cores)',
      integer('--threads', 1, 1024),
    )
    .option(
      '--max-cpu <percent>',
      'most of one core the worker takes, resting between training steps (default: 100)',
      integer('--max-cpu', 1, 100),
    )
    .option(
      '--idle-only',
      'train only while the rest of the machine is idle; pause within seconds when it is not (a long pause hands the unit in)',
    )
    .option('--json', 'log JSON lines, for machines (default: readable lines; also ARBOR_LOG_FORMAT=json)')
    .option(
      '--print-service',
      'print a systemd user unit that runs this worker with these options, and exit (README: "Volunteering as a service")',
    )
    .option('--cache-dir <dir>', 'keep downloaded blobs here across runs')
    .option(
      '--max-cache <MB>',
      'most the cache directory holds; the blobs used longest ago go first',
      integer('--max-cache', 1),
      DEFAULT_MAX_CACHE_MB,
    )
    .option(
      '--token-file <file>',
      'where a token from open enrolment is kept, by coordinator',
      DEFAULT_TOKEN_FILE,
    )
    .action(
      async (opts: {
        url: string;
        token?: string;
        name?: string;
        backend: BackendChoice;
        gpu?: boolean;
        maxUnits?: number;
        threads?: number;
        maxCpu?: number;
        idleOnly?: boolean;
        json?: boolean;
        printService?: boolean;
        cacheDir?: string;
        maxCache: number;
        tokenFile: string;
      }) => {
        const name = opts.name ?? stableWorkerName(opts.cacheDir ?? DEFAULT_ARBOR_HOME);
        if (opts.printService === true) {
          const token = opts.token ?? process.env['ARBOR_TOKEN'];
          process.stdout.write(
            systemdUnit({
              url: opts.url,
              args: serviceArgs({ ...opts, name }),
              ...(token ? { token } : {}),
              node: process.execPath,
            }),
          );
          return;
        }
        const terminal = process.stderr.isTTY ? new TerminalProgress() : undefined;
        const format = opts.json === true ? 'json' : (process.env['ARBOR_LOG_FORMAT'] ?? 'pretty');
        const log = createLogger('worker', undefined, terminal?.write, format);
        limitThreads(opts.threads);
        const backend = await chooseWorkerBackend(opts.backend, opts.gpu === true, (message) =>
          log.info(`choosing a backend: ${message}`),
        );
        const wantedGpu = opts.gpu === true || opts.backend === 'webgpu';
        for (const reason of backend.skipped)
          if (reason.includes(' samples/s, slower than ')) log.info(`not ${reason}`);
          else if (wantedGpu) log.warn(`skipped ${reason}`);
        if (wantedGpu && !backend.gpu) log.warn(`no GPU path on this machine: training on ${backend.name}`);
        if ((opts.threads ?? 1) > 1 && trainingThreads(backend.name, opts.threads) === 1)
          log.info(`--threads ${opts.threads}: the ${backend.name} backend trains on one thread here`);
        const { samplesPerSecond } = backend;
        const measured = Object.entries(backend.measured)
          .map(([name, speed]) => `${name} ${speed.toLocaleString('en')}`)
          .join(', ');
        log.info({ backend: backend.name, samples_per_s: Math.round(samplesPerSecond), measured }, 'ready');
        const controller = new AbortController();
        process.once('SIGINT', () => {
          log.info('stopping: sending the passes done as a partial result, or handing the unit back');
          controller.abort();
          process.once('SIGINT', () => process.exit(130));
        });
        process.once('SIGTERM', () => controller.abort());
        const token =
          opts.token ??
          process.env['ARBOR_TOKEN'] ??
          (await enrolledToken(opts.url, name, opts.tokenFile, log));
        const summary = await runWorker({
          url: opts.url,
          ...(token ? { token } : {}),
          name,
          backend: backend.name,
          gpu: backend.gpu,
          threads: trainingThreads(backend.name, opts.threads),
          samplesPerSecond,
          ...(opts.maxUnits !== undefined ? { maxUnits: opts.maxUnits } : {}),
          ...(opts.cacheDir !== undefined ? { cacheDir: opts.cacheDir } : {}),
          maxCacheBytes: opts.maxCache * 1e6,
          log,
          signal: controller.signal,
          pacing: new WakeWatch(
            opts.maxCpu !== undefined || opts.idleOnly === true
              ? volunteerPacer(opts.maxCpu, opts.idleOnly === true, log)
              : undefined,
            Date.now,
            (sleptMs) =>
              log.warn(
                { slept_s: Math.round(sleptMs / 1000) },
                'the machine slept: handing in what the unit trained',
              ),
          ),
          ...(terminal
            ? {
                onUnitProgress: (unit, report, totalSteps) =>
                  terminal.progress(
                    unit.unit_id,
                    report.epoch * report.stepsPerEpoch + report.stepInEpoch,
                    totalSteps,
                    report.loss,
                  ),
                onUnitEnd: () => terminal.unitEnded(),
              }
            : {}),
        });
        terminal?.stop();
        log.info(summary, 'worker finished');
      },
    );
}

/** The pacer of `--max-cpu` and `--idle-only`, on the wall clock and this machine's load. */
function volunteerPacer(maxCpuPercent: number | undefined, idleOnly: boolean, log: Logger): Pacer {
  return new Pacer(
    {
      now: () => performance.now(),
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      cpu: () => {
        const used = process.cpuUsage();
        return (used.user + used.system) / 1000;
      },
    },
    othersLoadSampler(),
    {
      ...(maxCpuPercent !== undefined ? { maxCpu: maxCpuPercent / 100 } : {}),
      idleOnly,
      onPause: (paused) =>
        log.info(paused ? 'the machine is in use: training paused' : 'the machine is idle: training resumed'),
    },
  );
}

/** The options a service runs the worker with: these ones, the name fixed, the token left out. */
function serviceArgs(opts: {
  name: string;
  backend: BackendChoice;
  gpu?: boolean;
  threads?: number;
  maxCpu?: number;
  idleOnly?: boolean;
  cacheDir?: string;
  maxCache: number;
  tokenFile: string;
}): string[] {
  return [
    ...['--name', opts.name],
    ...(opts.backend !== 'auto' ? ['--backend', opts.backend] : []),
    ...(opts.gpu === true ? ['--gpu'] : []),
    ...(opts.threads !== undefined ? ['--threads', String(opts.threads)] : []),
    ...(opts.maxCpu !== undefined ? ['--max-cpu', String(opts.maxCpu)] : []),
    ...(opts.idleOnly === true ? ['--idle-only'] : []),
    ...(opts.cacheDir !== undefined ? ['--cache-dir', resolve(opts.cacheDir)] : []),
    ...(opts.maxCache !== DEFAULT_MAX_CACHE_MB ? ['--max-cache', String(opts.maxCache)] : []),
    ...(opts.tokenFile !== DEFAULT_TOKEN_FILE ? ['--token-file', resolve(opts.tokenFile)] : []),
  ];
}
