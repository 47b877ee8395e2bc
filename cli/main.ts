import { Command } from 'commander';
import { setLogLevel } from '../shared/logging.ts';
import { ARBOR_VERSION } from '../shared/version.ts';

setLogLevel(process.env['ARBOR_LOG_LEVEL'] ?? 'info');

/**
 * Each command's module is imported only when that command runs, so `arbor worker` loads
 * the volunteer's code and nothing of the coordinator.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  demo: async () => (await import('./demo-command.ts')).demoCommand(),
  train: async () => (await import('./train-command.ts')).trainCommand(),
  coordinator: async () => (await import('./coordinator-command.ts')).coordinatorCommand(),
  worker: async () => (await import('../worker/command.ts')).workerCommand(),
  status: async () => (await import('./status-command.ts')).statusCommand(),
  token: async () => (await import('./token-command.ts')).tokenCommand(),
  admin: async () => (await import('./admin-command.ts')).adminCommand(),
  eval: async () => (await import('./eval-command.ts')).evalCommand(),
  bench: async () => (await import('./bench-command.ts')).benchCommand(),
  simulate: async () => (await import('./simulate-command.ts')).simulateCommand(),
};

const program = new Command('arbor')
  .version(ARBOR_VERSION)
  .description('Arbor: volunteer training of Fast Feedforward Networks.')
  .showHelpAfterError();

try {
  const named = process.argv[2];
  const wanted = named !== undefined && Object.hasOwn(COMMANDS, named) ? [named] : Object.keys(COMMANDS);
  for (const name of wanted) program.addCommand(await COMMANDS[name]!());
  await program.parseAsync(process.argv);
  // tfjs-wasm keeps handles open; the command is done.
  process.exit(0);
} catch (error) {
  const err = error as Error & { code?: string };
  process.stderr.write(`arbor: ${err.code ? `[${err.code}] ` : ''}${err.message}\n`);
  process.exit(1);
}
