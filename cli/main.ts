import { Command } from 'commander';
import { setLogLevel } from '../shared/logging.ts';
import { benchCommand } from './bench-command.ts';
import { coordinatorCommand } from './coordinator-command.ts';
import { demoCommand } from './demo-command.ts';
import { evalCommand } from './eval-command.ts';
import { statusCommand } from './status-command.ts';
import { trainCommand } from './train-command.ts';
import { workerCommand } from './worker-command.ts';

setLogLevel(process.env['ARBOR_LOG_LEVEL'] ?? 'info');

const program = new Command('arbor')
  .description('Arbor: volunteer training of Fast Feedforward Networks.')
  .showHelpAfterError()
  .addCommand(demoCommand())
  .addCommand(trainCommand())
  .addCommand(coordinatorCommand())
  .addCommand(workerCommand())
  .addCommand(statusCommand())
  .addCommand(evalCommand())
  .addCommand(benchCommand());

try {
  await program.parseAsync(process.argv);
  // tfjs-wasm keeps handles open; the command is done.
  process.exit(0);
} catch (error) {
  const err = error as Error & { code?: string };
  process.stderr.write(`arbor: ${err.code ? `[${err.code}] ` : ''}${err.message}\n`);
  process.exit(1);
}
