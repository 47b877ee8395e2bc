import { Command, Option } from 'commander';
import { BACKEND_CHOICES, type BackendChoice } from '../shared/backend.ts';
import { readFFF } from '../shared/checkpoint/fff-checkpoint.ts';
import { hardAccuracy } from '../shared/central-training.ts';
import { DATA_SPECS_HELP, loadData } from '../shared/data/load.ts';

export function evalCommand(): Command {
  return new Command('eval')
    .description('Hard-inference test accuracy of a checkpoint (no tensor backend needed).')
    .requiredOption('--model <file>', 'checkpoint (safetensors) written by arbor train or the coordinator')
    .option('--data <spec>', `dataset: ${DATA_SPECS_HELP}`, 'mnist')
    .option('--data-dir <dir>', 'directory of the IDX files for --data fashion-mnist')
    .option('--label <column>', 'label column for --data csv:PATH')
    .addOption(
      new Option('--backend <name>', 'accepted for symmetry; evaluation runs on the built-in kernel')
        .choices(BACKEND_CHOICES)
        .default('auto'),
    )
    .option('--json', 'print one JSON object on stdout')
    .action(
      async (opts: {
        model: string;
        data: string;
        dataDir?: string;
        label?: string;
        backend: BackendChoice;
        json: boolean;
      }) => {
        const weights = await readFFF(opts.model);
        const data = await loadData(opts.data, {
          ...(opts.dataDir !== undefined ? { dataDir: opts.dataDir } : {}),
          ...(opts.label !== undefined ? { label: opts.label } : {}),
        });
        if (
          data.test.inputWidth !== weights.shape.inputWidth ||
          data.test.classes > weights.shape.outputWidth
        ) {
          throw new Error(
            `${opts.model} expects ${weights.shape.inputWidth} inputs and ${weights.shape.outputWidth} classes; ` +
              `${opts.data} has ${data.test.inputWidth} inputs and ${data.test.classes} classes.`,
          );
        }
        const result = { hard_test_acc: hardAccuracy(weights, data.test), n: data.test.n };
        process.stdout.write(
          opts.json
            ? `${JSON.stringify(result)}\n`
            : `hard test accuracy ${(result.hard_test_acc * 100).toFixed(2)}% on ${result.n} samples\n`,
        );
      },
    );
}
