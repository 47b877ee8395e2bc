import { Command, InvalidArgumentError, Option } from 'commander';
import { benchPretraining } from '../bench/pretraining.ts';
import { benchReroute } from '../bench/reroute.ts';
import type { JobConfig } from '../coordinator/job/config.ts';
import { benchDistributed } from '../bench/distributed.ts';
import { benchInference } from '../bench/inference.ts';
import { benchTraining } from '../bench/training.ts';
import { BROWSER_BENCH_BACKENDS, benchBrowserTraining } from '../bench/browser/browser-training.ts';
import { benchWorkerStartup } from '../bench/worker-startup.ts';
import { benchJoin } from '../bench/join.ts';
import { benchUnitCheckpoints } from '../bench/unit-checkpoints.ts';
import { benchCoordinatorCapacity } from '../bench/coordinator-capacity.ts';
import { type BlobGrowthRun, benchBlobGrowth } from '../bench/blob-growth.ts';
import { benchBackendChoice } from '../bench/browser/backend-choice.ts';
import { BACKEND_CHOICES, type BackendChoice, selectBackend } from '../shared/backend.ts';
import { loadJobData } from '../coordinator/job/job-data.ts';
import { createLogger } from '../shared/logging.ts';
import { addJobOptions, jobConfigFromOptions, settingArg } from './job-flags.ts';
import { accuracyList, integer } from '../shared/cli-options.ts';

/**
 * The benchmark's job unless flags say otherwise: Fashion-MNIST at training width 2048,
 * D=6, K=3, L=32 (BENCHMARKS.md: 4 pp above D=8, L=8 at the same width).
 */
/** `arbor bench blob-growth`'s job, unless flags say otherwise: many short units of a small tree. */
const BLOB_GROWTH_JOB = { depth: 4, frozen: 2, leaf: 8, shard_epochs: 150 } as const;
const DISTRIBUTED_DEFAULTS = { data: 'fashion-mnist', depth: 6, frozen: 3, leaf: 32 } as const;

/** The job of `arbor bench distributed` and `pretraining`: flags over DISTRIBUTED_DEFAULTS. */
function benchJobConfig(opts: Record<string, unknown>) {
  return jobConfigFromOptions({
    ...opts,
    data: opts['data'] ?? DISTRIBUTED_DEFAULTS.data,
    depth: opts['depth'] ?? DISTRIBUTED_DEFAULTS.depth,
    frozen: opts['frozen'] ?? DISTRIBUTED_DEFAULTS.frozen,
    leaf: opts['leaf'] ?? DISTRIBUTED_DEFAULTS.leaf,
  });
}

function backendOption(description: string): Option {
  return new Option('--backend <name>', description).choices(BACKEND_CHOICES).default('auto');
}

/** --depth, --leaf and --batch with per-benchmark defaults. */
function shapeOptions(
  command: Command,
  defaults: { depth: number; leaf: number; batch: number },
  batchHelp: string,
) {
  return command
    .option('--depth <D>', 'tree depth', integer('--depth', 1, 16), defaults.depth)
    .option('--leaf <L>', 'leaf width', settingArg('--leaf', 'leaf'), defaults.leaf)
    .option('--batch <n>', batchHelp, settingArg('--batch', 'batch'), defaults.batch);
}

export function benchCommand(): Command {
  const bench = new Command('bench').description('Benchmarks that print JSON.');
  shapeOptions(
    bench
      .command('inference')
      .description(
        'Hard FFF inference against a dense layer of the same training width (2^D·L) on the same backend.',
      ),
    { depth: 9, leaf: 8, batch: 2048 },
    'samples per call',
  )
    .option('--reps <n>', 'timed repetitions (median reported)', integer('--reps', 1), 7)
    .addOption(
      new Option('--kernel <name>', 'hard-inference kernel').choices(['auto', 'wasm', 'js']).default('auto'),
    )
    .addOption(backendOption('tensor backend for the dense baseline'))
    .option('--json', 'print one JSON object on stdout')
    .action(
      async (opts: {
        depth: number;
        leaf: number;
        batch: number;
        reps: number;
        kernel: 'auto' | 'wasm' | 'js';
        backend: BackendChoice;
        json: boolean;
      }) => {
        const backend = await selectBackend(opts.backend);
        const result = await benchInference({
          depth: opts.depth,
          leaf: opts.leaf,
          batch: opts.batch,
          reps: opts.reps,
          kernel: opts.kernel,
          backendName: backend.name,
        });
        process.stdout.write(
          opts.json
            ? `${JSON.stringify(result)}\n`
            : `D=${result.depth} L=${result.leaf} width ${result.width} batch ${result.batch} on ${result.backend}: ` +
                `FFF ${result.fff_ms.toFixed(2)} ms, dense ${result.ff_ms.toFixed(1)} ms, speedup ${result.speedup.toFixed(1)}x\n`,
        );
      },
    );
  shapeOptions(
    bench
      .command('training')
      .description(
        'Soft training throughput (samples/s) of an FFF against a dense MLP of the same width, same backend.',
      ),
    { depth: 4, leaf: 8, batch: 256 },
    'minibatch size',
  )
    .option('--steps <n>', 'timed steps', integer('--steps', 1), 60)
    .addOption(
      new Option('--backend <name>', 'tensor backend (with --browser: webgpu, webgl or wasm)')
        .choices([...new Set([...BACKEND_CHOICES, ...BROWSER_BENCH_BACKENDS])])
        .default('auto'),
    )
    .option('--browser', 'run in headless Chromium (WebGPU and WebGL2 on SwiftShader where there is no GPU)')
    .option('--json', 'print one JSON object on stdout')
    .action(
      async (opts: {
        depth: number;
        leaf: number;
        batch: number;
        steps: number;
        backend: BackendChoice | 'webgl';
        browser?: boolean;
        json: boolean;
      }) => {
        if (opts.browser !== true && opts.backend === 'webgl')
          throw new InvalidArgumentError('--backend webgl runs in a browser: add --browser');
        if (opts.browser === true && !(BROWSER_BENCH_BACKENDS as readonly string[]).includes(opts.backend))
          throw new InvalidArgumentError('with --browser, --backend is webgpu, webgl or wasm');
        const result =
          opts.browser === true
            ? await benchBrowserTraining(opts.backend, opts)
            : await (async () => {
                await selectBackend(opts.backend as BackendChoice);
                return benchTraining(opts);
              })();
        process.stdout.write(
          opts.json
            ? `${JSON.stringify(result)}\n`
            : `D=${result.depth} L=${result.leaf} batch ${result.batch} on ${result.backend}: FFF ${result.fff_samples_per_s} samples/s, ` +
                `dense ${result.ff_samples_per_s} samples/s (${result.ratio_to_dense.toFixed(2)}x)\n`,
        );
      },
    );
  addJobOptions(
    bench
      .command('distributed')
      .description(
        'A coordinator and N worker processes on loopback against the central twin (same model and epochs): accuracy, wall time, bytes. Default job: Fashion-MNIST, D=6, K=3, L=32.',
      ),
    DISTRIBUTED_DEFAULTS,
  )
    .option('--workers <n>', 'worker processes', integer('--workers', 1, 64), 2)
    .option(
      '--target-acc <list>',
      'report when an evaluation first reached these accuracies, e.g. 0.85,0.86',
      accuracyList,
      [],
    )
    .option('--no-central', 'skip the central twin')
    .option('--json', 'print one JSON object on stdout')
    .action(async (opts: Record<string, unknown>) => {
      await selectBackend('auto');
      const log = createLogger('bench');
      const config = benchJobConfig(opts);
      const data = await loadJobData(config);
      const result = await benchDistributed({
        config,
        data,
        workers: opts['workers'] as number,
        central: opts['central'] as boolean,
        log,
        targets: opts['targetAcc'] as number[],
      });
      process.stdout.write(
        opts['json']
          ? `${JSON.stringify(result)}\n`
          : `distributed ${(result.dist_hard_test_acc * 100).toFixed(2)}% in ${result.dist_wall_s.toFixed(0)} s; ` +
              `central ${result.central_hard_test_acc === null ? '-' : (result.central_hard_test_acc * 100).toFixed(2)}% in ${result.central_wall_s?.toFixed(0) ?? '-'} s; ` +
              `${result.comm_reduction.toFixed(0)}x less model traffic than data-parallel; imbalance ${result.routing_imbalance.toFixed(2)}\n`,
      );
    });
  addJobOptions(
    bench
      .command('pretraining')
      .description(
        'Pretraining of the top K levels in each mode: wall time and routing balance. Default job: Fashion-MNIST, D=6, L=32.',
      ),
    DISTRIBUTED_DEFAULTS,
  )
    .option('--modes <list>', 'pretraining modes to compare, comma-separated', 'top,levels')
    .option('--json', 'print one JSON object on stdout')
    .action(async (opts: Record<string, unknown>) => {
      await selectBackend('auto');
      const config = benchJobConfig(opts);
      const modes = String(opts['modes']).split(',') as JobConfig['pretrain']['mode'][];
      for (const mode of modes)
        if (!['auto', 'top', 'full', 'levels'].includes(mode))
          throw new InvalidArgumentError(
            `--modes: unknown pretraining mode '${mode}' (auto, top, full, levels)`,
          );
      const result = await benchPretraining(config, await loadJobData(config), modes);
      process.stdout.write(
        opts['json']
          ? `${JSON.stringify(result)}\n`
          : result.rows
              .map(
                (r) =>
                  `${r.mode.padEnd(7)} K=${r.frozen}: ${r.pretrain_s.toFixed(1)} s, imbalance ${r.routing_imbalance.toFixed(2)}, ${r.empty_shards} empty shards\n`,
              )
              .join(''),
      );
    });
  addJobOptions(
    bench
      .command('reroute')
      .description(
        "A slow top's re-route of the training set: its time, and the longest the coordinator's event loop waits meanwhile. Default job: Fashion-MNIST, D=6, K=3, L=32.",
      ),
    DISTRIBUTED_DEFAULTS,
  )
    .option('--json', 'print one JSON object on stdout')
    .action(async (opts: Record<string, unknown>) => {
      await selectBackend('auto');
      const config = benchJobConfig(opts);
      const r = await benchReroute(config, await loadJobData(config));
      process.stdout.write(
        opts['json']
          ? `${JSON.stringify(r)}\n`
          : `re-route of ${r.samples} samples: ${r.reroute_s.toFixed(1)} s, longest event-loop wait ${r.max_stall_ms.toFixed(0)} ms (p99 ${r.p99_stall_ms.toFixed(0)} ms)\n`,
      );
    });
  addJobOptions(
    bench
      .command('blob-growth')
      .description(
        "A long job's blob store, collected (the sweeper's default) against keeping every blob: the same simulated job run twice, volunteers at 20 samples/s. Default job: the embedded MNIST, D=4, K=2, L=8, 150 epochs a shard (about 3,400 units, 1,750 merged).",
      ),
    BLOB_GROWTH_JOB,
  )
    .option('--volunteers <n>', 'simulated volunteers', integer('--volunteers', 1), 8)
    .option('--json', 'print one JSON object on stdout')
    .action(async (opts: Record<string, unknown>) => {
      await selectBackend('auto');
      const config = jobConfigFromOptions({
        ...opts,
        depth: opts['depth'] ?? BLOB_GROWTH_JOB.depth,
        frozen: opts['frozen'] ?? BLOB_GROWTH_JOB.frozen,
        leaf: opts['leaf'] ?? BLOB_GROWTH_JOB.leaf,
        shardEpochs: opts['shardEpochs'] ?? BLOB_GROWTH_JOB.shard_epochs,
      });
      const r = await benchBlobGrowth(config, await loadJobData(config), opts['volunteers'] as number);
      const line = (name: string, run: BlobGrowthRun) =>
        `${name}: ${run.units} units, peak ${run.peak_mb.toFixed(1)} MB (${run.peak_kb_per_unit.toFixed(0)} kB a unit), ${run.final_mb.toFixed(1)} MB at the end\n`;
      process.stdout.write(
        opts['json']
          ? `${JSON.stringify(r)}\n`
          : line('collected', r.collected) +
              line('kept all ', r.kept_all) +
              `model ${r.model_mb.toFixed(2)} MB, training data ${r.train_data_mb.toFixed(1)} MB; peak ratio ${r.peak_ratio.toFixed(3)}\n`,
      );
    });
  bench
    .command('coordinator')
    .description(
      'What one coordinator process holds: simulated volunteers (other processes, one loopback address each, no training) lease and return units over real sockets as fast as it lets them.',
    )
    .option('--workers <n>', 'simulated volunteers', integer('--workers', 1, 60_000), 100)
    .option(
      '--duration <s>',
      'seconds of steady work, after all have connected',
      integer('--duration', 1),
      30,
    )
    .option('--processes <n>', 'processes the volunteers are spread over', integer('--processes', 1, 64), 2)
    .option('--json', 'print one JSON object on stdout')
    .action(async (opts: { workers: number; duration: number; processes: number; json?: boolean }) => {
      const r = await benchCoordinatorCapacity(opts.workers, opts.duration, opts.processes);
      process.stdout.write(
        opts.json
          ? `${JSON.stringify(r)}\n`
          : `${r.workers_connected} of ${r.workers} volunteers connected: ${r.units_per_s.toFixed(1)} units/s, ` +
              `assign p50 ${r.assign_p50_ms.toFixed(1)} ms p99 ${r.assign_p99_ms.toFixed(1)} ms, ` +
              `verdict p50 ${r.accept_p50_ms.toFixed(1)} ms p99 ${r.accept_p99_ms.toFixed(1)} ms, ` +
              `status ${r.status_ms.toFixed(1)} ms, coordinator ${r.coordinator_rss_mb.toFixed(0)} MB, ${r.errors} errors\n`,
      );
    });
  bench
    .command('worker-startup')
    .description(
      "Load time and peak memory of the CLI's commands (compiled and from source), the packaged arbor-worker, and a live arbor status; the baseline loads every command.",
    )
    .option('--runs <n>', 'runs of each (median reported)', integer('--runs', 1), 5)
    .option('--json', 'print one JSON object on stdout')
    .action(async (opts: { runs: number; json: boolean }) => {
      const r = await benchWorkerStartup(opts.runs);
      const line = (name: string, s: { ms: number; max_rss_mb: number }) =>
        `${name.padEnd(26)}${s.ms.toFixed(0).padStart(6)} ms ${s.max_rss_mb.toFixed(0).padStart(6)} MB\n`;
      process.stdout.write(
        opts.json
          ? `${JSON.stringify(r)}\n`
          : line('all commands (baseline)', r.all_commands) +
              line('arbor --help', r.arbor_help) +
              line('arbor status --help', r.status_help) +
              line('arbor admin --help', r.admin_help) +
              line('arbor worker', r.arbor_worker) +
              line('arbor-worker (package)', r.packaged_worker) +
              line('arbor --help (source)', r.arbor_help_source) +
              line('arbor worker (source)', r.arbor_worker_source) +
              line('arbor status (live)', r.status_live) +
              line('arbor status (live, source)', r.status_live_source) +
              line('arbor admin resume (live)', r.admin_live),
      );
    });
  bench
    .command('join')
    .description(
      "A new volunteer's first minutes on the default job: the printed join command with Node alone, against the repository's worker (the baseline).",
    )
    .option('--units <n>', 'units each volunteer trains', integer('--units', 1), 3)
    .action(async (opts: { units: number }) => {
      process.stdout.write(`${JSON.stringify(await benchJoin(opts.units))}\n`);
    });
  bench
    .command('unit-checkpoints')
    .description(
      "What a tab's unit checkpoints cost its training: a unit of the default job's subtree trained saving a checkpoint every --every-ms, against none (the baseline).",
    )
    .option(
      '--subtree-depth <n>',
      'depth of the subtree a unit trains (the default job: 4)',
      integer('--subtree-depth', 1, 12),
      4,
    )
    .option('--leaf <L>', 'leaf width', settingArg('--leaf', 'leaf'), 32)
    .option(
      '--every-ms <ms>',
      'checkpoint cadence (the tab saves every 5000)',
      integer('--every-ms', 10),
      1000,
    )
    .option('--epochs <n>', 'passes over 2,048 samples per run', integer('--epochs', 1), 12)
    .action(async (opts: { subtreeDepth: number; leaf: number; everyMs: number; epochs: number }) => {
      await selectBackend('auto');
      process.stdout.write(
        `${JSON.stringify(await benchUnitCheckpoints({ ...opts, depth: opts.subtreeDepth }))}\n`,
      );
    });
  bench
    .command('browser-choice')
    .description(
      "A browser volunteer's wait before training: /volunteer choosing its backend by measuring, against ?backend=webgpu (the old first-that-starts).",
    )
    .option('--tabs <n>', 'tabs that choose, one after another', integer('--tabs', 1), 3)
    .action(async (opts: { tabs: number }) => {
      process.stdout.write(`${JSON.stringify(await benchBackendChoice(opts.tabs))}\n`);
    });
  return bench;
}
