import { Command, Option } from 'commander';
import { BACKEND_CHOICES, type BackendChoice, selectBackend } from '../shared/backend.ts';
import { provenanceMetadata } from '../shared/data/provenance.ts';
import { DATA_SPECS_HELP, loadData } from '../shared/data/load.ts';
import { settingArg } from './job-flags.ts';
import { trainCentral } from '../shared/central-training.ts';
import { autoBatchSize } from '../shared/fff/recipe.ts';
import { ACTIVATIONS, type Activation } from '../shared/fff/weights.ts';
import { createLogger } from '../shared/logging.ts';
import { integer, positiveNumber } from '../shared/cli-options.ts';
import { trainingProgress } from './progress.ts';

/** Defaults found by experiment on Fashion-MNIST; see BENCHMARKS.md. */
export const TRAIN_DEFAULTS = {
  depth: 4,
  leaf: 8,
  epochs: 30,
  lr: 1e-3,
  hardening: 3,
  leak: 0,
  balance: 1,
} as const;

export function trainCommand(): Command {
  return new Command('train')
    .description(
      'Train an FFF in this one process (the central baseline) and report hard and soft test accuracy.',
    )
    .option('--data <spec>', `dataset: ${DATA_SPECS_HELP}`, 'mnist')
    .option('--data-dir <dir>', 'directory of the IDX files for --data fashion-mnist')
    .option('--label <column>', 'label column for --data csv:PATH')
    .option(
      '--depth <D>',
      'tree depth D: 2^D-1 branch nodes, 2^D leaves',
      integer('--depth', 1, 16),
      TRAIN_DEFAULTS.depth,
    )
    .option(
      '--leaf <L>',
      'hidden width L of every leaf MLP',
      settingArg('--leaf', 'leaf'),
      TRAIN_DEFAULTS.leaf,
    )
    .addOption(new Option('--activation <fn>', 'leaf activation').choices(ACTIVATIONS).default('relu'))
    .option(
      '--epochs <n>',
      'passes over the training set (1/3 soft, then hardening, last ~27% hard-routed leaf tuning)',
      integer('--epochs', 1),
      TRAIN_DEFAULTS.epochs,
    )
    .option(
      '--batch <n>',
      'minibatch size (default: a power of two from 32 to 256 giving ~7,000 steps)',
      settingArg('--batch', 'batch'),
    )
    .option('--lr <rate>', 'learning rate', settingArg('--lr', 'lr'), TRAIN_DEFAULTS.lr)
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(['adam', 'sgd']).default('adam'))
    .option(
      '--hardening <h>',
      'weight h of the mean decision entropy in the hardening phase',
      settingArg('--hardening', 'hardening'),
      TRAIN_DEFAULTS.hardening,
    )
    .option(
      '--leak <p>',
      "region leak: probability of swapping a node's children per sample",
      settingArg('--leak', 'leak'),
      TRAIN_DEFAULTS.leak,
    )
    .option(
      '--frozen <K>',
      'levels that would be frozen for sharding: balance term and routing_imbalance at depth K (0 = off)',
      integer('--frozen', 0, 16),
      0,
    )
    .option(
      '--balance <w>',
      'weight of the routing-balance term at depth --frozen',
      settingArg('--balance', 'pretrain.balance'),
      TRAIN_DEFAULTS.balance,
    )
    .addOption(
      new Option(
        '--top <mode>',
        "with --frozen: the top K levels train 'free'ly throughout, or after --top-from epochs stay 'frozen' or move 'slow'ly (the central twin of a distributed job)",
      )
        .choices(['free', 'frozen', 'slow'])
        .default('free'),
    )
    .option(
      '--top-from <epochs>',
      'epochs before the top is frozen or slowed (the pretraining)',
      integer('--top-from', 0),
      4,
    )
    .option('--top-rate <r>', "the top's share of each step once slowed", positiveNumber('--top-rate'), 0.1)
    .option('--seed <n>', 'random seed', settingArg('--seed', 'seed'), 1)
    .addOption(new Option('--backend <name>', 'tensor backend').choices(BACKEND_CHOICES).default('auto'))
    .option('--gpu', 'prefer the native GPU backend (@tensorflow/tfjs-node-gpu)')
    .option('--out <file>', 'checkpoint to write (safetensors)', 'arbor-model.safetensors')
    .option('--json', 'print one JSON object on stdout')
    .action(
      async (opts: {
        data: string;
        dataDir?: string;
        label?: string;
        depth: number;
        leaf: number;
        activation: Activation;
        epochs: number;
        batch?: number;
        lr: number;
        optimizer: 'adam' | 'sgd';
        hardening: number;
        leak: number;
        frozen: number;
        balance: number;
        top: 'free' | 'frozen' | 'slow';
        topFrom: number;
        topRate: number;
        seed: number;
        backend: BackendChoice;
        gpu: boolean;
        out: string;
        json: boolean;
      }) => {
        const log = createLogger('train');
        if (opts.frozen >= opts.depth)
          throw new Error(`--frozen (${opts.frozen}) must be below --depth (${opts.depth}).`);
        const backend = await selectBackend(opts.backend, opts.gpu);
        log.info({ backend: backend.name, skipped: backend.skipped }, 'tensor backend selected');
        const data = await loadData(opts.data, {
          ...(opts.dataDir !== undefined ? { dataDir: opts.dataDir } : {}),
          ...(opts.label !== undefined ? { label: opts.label } : {}),
          seed: opts.seed,
        });
        log.info({ data: opts.data, train: data.train.n, test: data.test.n }, 'data loaded');
        const progress = trainingProgress(!opts.json);
        const { result } = await trainCentral(
          data,
          {
            depth: opts.depth,
            leafWidth: opts.leaf,
            activation: opts.activation,
            epochs: opts.epochs,
            batchSize: opts.batch ?? autoBatchSize(data.train.n, opts.epochs),
            lr: opts.lr,
            optimizer: opts.optimizer,
            hardening: opts.hardening,
            leak: opts.leak,
            balance: opts.frozen > 0 ? opts.balance : 0,
            frozenLevels: opts.frozen,
            seed: opts.seed,
            ...(opts.top !== 'free' && opts.frozen > 0
              ? {
                  top: {
                    levels: opts.frozen,
                    fromEpoch: opts.topFrom,
                    rate: opts.top === 'frozen' ? 0 : opts.topRate,
                  },
                }
              : {}),
            out: opts.out,
            outMetadata: provenanceMetadata({
              spec: opts.data,
              ...(opts.dataDir !== undefined ? { dataDir: opts.dataDir } : {}),
              ...(opts.label !== undefined ? { label: opts.label } : {}),
              seed: opts.seed,
            }),
          },
          progress.onStep,
        );
        progress.stop();
        const output = { ...result, backend: backend.name, data: opts.data };
        if (opts.json) process.stdout.write(`${JSON.stringify(output)}\n`);
        else {
          process.stdout.write(
            `hard test accuracy ${(result.hard_test_acc * 100).toFixed(2)}%  soft ${(result.soft_test_acc * 100).toFixed(2)}%\n` +
              `${Math.round(result.samples_per_s)} samples/s on ${backend.name}, ${result.epochs} epochs, D=${result.depth} L=${result.leaf}\n` +
              (result.routing_imbalance !== null
                ? `routing imbalance at K=${result.frozen}: ${result.routing_imbalance.toFixed(2)}x\n`
                : '') +
              `checkpoint: ${result.checkpoint}\n`,
          );
        }
      },
    );
}
