import { Command } from 'commander';
import { ARBOR_VERSION } from '../shared/version.ts';

/**
 * Each command's module is imported only when that command runs, so `arbor worker` loads
 * the volunteer's code and nothing of the coordinator, and `arbor --help` loads none.
 */
const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  demo: {
    summary: 'a coordinator and workers on this machine train the embedded MNIST, then the central twin',
    load: async () => (await import('./demo-command.ts')).demoCommand(),
  },
  train: {
    summary: 'train an FFF in one process (the central reference)',
    load: async () => (await import('./train-command.ts')).trainCommand(),
  },
  coordinator: {
    summary: 'serve a training job to volunteers',
    load: async () => (await import('./coordinator-command.ts')).coordinatorCommand(),
  },
  worker: {
    summary: 'volunteer: train work units for a coordinator',
    load: async () => (await import('../worker/command.ts')).workerCommand(),
  },
  status: {
    summary: "a running coordinator's progress, accuracy, shards and top volunteers",
    load: async () => (await import('./status-command.ts')).statusCommand(),
  },
  token: {
    summary: 'create, list and revoke volunteer tokens',
    load: async () => (await import('./token-command.ts')).tokenCommand(),
  },
  admin: {
    summary: 'operator controls of a running coordinator',
    load: async () => (await import('./admin-command.ts')).adminCommand(),
  },
  eval: {
    summary: 'evaluate a checkpoint',
    load: async () => (await import('./eval-command.ts')).evalCommand(),
  },
  bench: {
    summary: 'benchmarks that print JSON',
    load: async () => (await import('./bench-command.ts')).benchCommand(),
  },
  simulate: {
    summary: 'a simulated crowd against the real coordinator core on a virtual clock',
    load: async () => (await import('./simulate-command.ts')).simulateCommand(),
  },
};

const program = new Command('arbor')
  .version(ARBOR_VERSION)
  .description('Arbor: volunteer training of Fast Feedforward Networks.')
  .showHelpAfterError();

try {
  // `arbor help worker` is `arbor worker --help`.
  const [first, second] = process.argv.slice(2);
  const named = first === 'help' && second !== undefined ? second : first;
  if (named !== undefined && Object.hasOwn(COMMANDS, named))
    program.addCommand(await COMMANDS[named]!.load());
  // Anything else (no command, --help, a typo) needs only the names and what they do.
  else for (const [name, { summary }] of Object.entries(COMMANDS)) program.command(name).description(summary);
  await program.parseAsync(process.argv);
  // tfjs-wasm keeps handles open; the command is done.
  process.exit(0);
} catch (error) {
  const err = error as Error & { code?: string };
  process.stderr.write(`arbor: ${err.code ? `[${err.code}] ` : ''}${err.message}\n`);
  process.exit(1);
}
