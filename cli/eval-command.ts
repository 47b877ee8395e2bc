import { Command, Option } from 'commander';
import { BACKEND_CHOICES, type BackendChoice } from '../shared/backend.ts';
import { readFFFCheckpoint } from '../shared/checkpoint/fff-file.ts';
import { CheckpointError } from '../shared/checkpoint/safetensors.ts';
import { provenanceFrom } from '../shared/data/provenance.ts';
import { hardAccuracy } from '../shared/central-training.ts';
import { DATA_SPECS_HELP, loadData } from '../shared/data/load.ts';

export function evalCommand(): Command {
  return new Command('eval')
    .description('Hard-inference test accuracy of a checkpoint (no tensor backend needed).')
    .requiredOption('--model <file>', 'checkpoint (safetensors) written by arbor train or the coordinator')
    .option('--data <spec>', `dataset (default: the one the checkpoint was trained on): ${DATA_SPECS_HELP}`)
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
        data?: string;
        dataDir?: string;
        label?: string;
        backend: BackendChoice;
        json: boolean;
      }) => {
        const { weights, metadata } = await readFFFCheckpoint(opts.model);
        const recorded = provenanceFrom(metadata);
        if (opts.data === undefined && recorded === undefined)
          throw new CheckpointError(
            opts.model,
            'does not record the data it was trained on (older checkpoints do not): pass --data',
          );
        const spec = opts.data ?? recorded!.spec;
        if (recorded !== undefined && opts.data !== undefined && opts.data !== recorded.spec)
          process.stderr.write(
            `arbor: ${opts.model} was trained on ${recorded.spec}; evaluating on ${opts.data} as asked\n`,
          );
        const same = opts.data === undefined || opts.data === recorded?.spec;
        const dataDir = opts.dataDir ?? (same ? recorded?.dataDir : undefined);
        const label = opts.label ?? (same ? recorded?.label : undefined);
        const seed = same ? recorded?.seed : undefined;
        const data = await loadData(spec, {
          ...(dataDir !== undefined ? { dataDir } : {}),
          ...(label !== undefined ? { label } : {}),
          ...(seed !== undefined ? { seed } : {}),
        });
        if (
          data.test.inputWidth !== weights.shape.inputWidth ||
          data.test.classes > weights.shape.outputWidth
        ) {
          throw new Error(
            `${opts.model} expects ${weights.shape.inputWidth} inputs and ${weights.shape.outputWidth} classes; ` +
              `${spec} has ${data.test.inputWidth} inputs and ${data.test.classes} classes.`,
          );
        }
        const result = { hard_test_acc: hardAccuracy(weights, data.test), n: data.test.n, data: spec };
        process.stdout.write(
          opts.json
            ? `${JSON.stringify(result)}\n`
            : `hard test accuracy ${(result.hard_test_acc * 100).toFixed(2)}% on ${result.n} ${spec} test samples\n`,
        );
      },
    );
}
