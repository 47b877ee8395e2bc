// The baseline of `arbor bench worker-startup`: every command's module loaded, as
// `arbor worker` did before commands were loaded one at a time.
await Promise.all([
  import('../../cli/demo-command.ts'),
  import('../../cli/train-command.ts'),
  import('../../cli/coordinator-command.ts'),
  import('../../worker/command.ts'),
  import('../../cli/status-command.ts'),
  import('../../cli/token-command.ts'),
  import('../../cli/admin-command.ts'),
  import('../../cli/eval-command.ts'),
  import('../../cli/bench-command.ts'),
  import('../../cli/simulate-command.ts'),
]);
process.exit(0);
