import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { addJobOptions, jobConfigFromOptions, settingSchema } from '../../cli/job-flags.ts';
import { trainCommand } from '../../cli/train-command.ts';
import { benchCommand } from '../../cli/bench-command.ts';

/** Parses `args` with the job flags; the one-line error when commander refuses them. */
function parse(args: string[]): Record<string, unknown> | string {
  const command = addJobOptions(new Command('job'))
    .exitOverride()
    .configureOutput({ writeErr: () => undefined });
  try {
    command.parse(args, { from: 'user' });
    return command.opts();
  } catch (error) {
    return (error as Error).message;
  }
}

const refusal = (args: string[]): string => {
  const outcome = parse(args);
  return typeof outcome === 'string' ? outcome : 'accepted';
};

void describe('job flags, derived from the job settings’ one declaration', () => {
  void it('hold each flag to its setting’s range, with a line naming the flag', () => {
    assert.equal(
      parse(['--depth', '17']),
      "error: option '--depth <D>' argument '17' is invalid. --depth must be an integer from 2 to 16, got '17'.",
    );
    assert.match(refusal(['--unit-seconds', '0']), /--unit-seconds must be a number from 0.01 to 86400/);
    assert.match(refusal(['--in-flight-span', '1.5']), /--in-flight-span must be a number from 0.001 to 1,/);
    assert.match(refusal(['--quorum', '3']), /--quorum must be an integer from 1 to 2/);
    assert.match(refusal(['--outer-strategy', 'mean']), /Allowed choices are sum, delayed-nesterov, fedbuff/);
    assert.match(refusal(['--top-lr', '0.1,x']), /--top-lr takes rates from 0 to 10/);
  });

  void it('set the settings they name, and nothing else', () => {
    const opts = parse([
      '--depth',
      '5',
      '--frozen',
      '1',
      '--shard-epochs',
      '3',
      '--top-lr',
      '0.2,0.1',
      '--until',
      'acc:0.9',
    ]);
    assert.equal(typeof opts, 'object');
    const config = jobConfigFromOptions(opts as Record<string, unknown>);
    assert.deepEqual(
      [config.depth, config.frozen, config.shard_epochs, config.local_epochs, config.top.lr, config.until],
      [5, 1, 3, 3, [0.2, 0.1], { accuracy: 0.9 }],
    );
  });

  void it('flags of other commands that mean a job setting take its range', () => {
    const ranges: [Command, string, string][] = [
      [trainCommand(), '--leaf', 'leaf'],
      [trainCommand(), '--batch', 'batch'],
      [trainCommand(), '--seed', 'seed'],
      [benchCommand().commands.find((c) => c.name() === 'training')!, '--leaf', 'leaf'],
    ];
    for (const [command, flag, key] of ranges) {
      const option = command.options.find((o) => o.long === flag)!;
      const { maximum } = settingSchema(key);
      assert.throws(
        () => option.parseArg!(String(maximum! + 1), undefined),
        new RegExp(`${flag} must be an integer from \\d+ to ${maximum}`),
        `${command.name()} ${flag}`,
      );
    }
  });
});
