/** Entry of the self-contained volunteer package (packaging/worker-package.ts): `arbor-worker --url ws://HOST:PORT`. */
import { ARBOR_VERSION } from '../../shared/version.ts';
import { workerCommand } from '../../worker/command.ts';

try {
  await workerCommand('arbor-worker').version(ARBOR_VERSION).showHelpAfterError().parseAsync(process.argv);
  // tfjs-wasm keeps handles open; the volunteer is done.
  process.exit(0);
} catch (error) {
  const err = error as Error & { code?: string };
  process.stderr.write(`arbor-worker: ${err.code ? `[${err.code}] ` : ''}${err.message}\n`);
  process.exit(1);
}
