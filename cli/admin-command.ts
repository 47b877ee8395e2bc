/**
 * `arbor admin pause|resume|cancel|revoke|export --url URL`: the operator's controls over
 * a running coordinator, with its admin token (--token or $ARBOR_ADMIN_TOKEN).
 */
import { Command } from 'commander';
import { ADMIN_ROUTES } from '../proto/routes.ts';
import { InputError } from '../shared/input-error.ts';
import { LOCAL_COORDINATOR, coordinatorBase } from './status-command.ts';

class AdminError extends InputError {
  readonly code = 'ADMIN_REFUSED' as const;
}

interface AdminOptions {
  url: string;
  token?: string;
}

async function call(opts: AdminOptions, method: 'GET' | 'POST', path: string): Promise<Response> {
  const token = opts.token ?? process.env['ARBOR_ADMIN_TOKEN'];
  if (!token) throw new AdminError(opts.url, 'needs the admin token: --token or ARBOR_ADMIN_TOKEN');
  let response: Response;
  try {
    response = await fetch(`${opts.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(60_000),
    });
  } catch (error) {
    throw new AdminError(opts.url, `cannot reach the coordinator: ${(error as Error).message}`);
  }
  if (!response.ok) {
    const text = await response.text();
    let message = text.slice(0, 300);
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? message;
    } catch {
      // not JSON: the text itself
    }
    throw new AdminError(`${opts.url}${path}`, `HTTP ${response.status}: ${message}`);
  }
  return response;
}

const printJson = async (response: Response): Promise<void> => {
  process.stdout.write(`${JSON.stringify(await response.json())}\n`);
};

export function adminCommand(): Command {
  const admin = new Command('admin').description(
    'Operator controls of a running coordinator (needs its admin token: --token or $ARBOR_ADMIN_TOKEN).',
  );
  const withTarget = (command: Command): Command =>
    command
      .option('--url <url>', 'the coordinator, http://HOST:PORT', coordinatorBase, LOCAL_COORDINATOR)
      .option('--token <secret>', 'the admin token (default: $ARBOR_ADMIN_TOKEN)');

  withTarget(
    admin.command('pause').description('Lease no new units (units in flight finish and merge).'),
  ).action(async (opts: AdminOptions) => printJson(await call(opts, 'POST', ADMIN_ROUTES.pause)));
  withTarget(admin.command('resume').description('Lease units again.')).action(async (opts: AdminOptions) =>
    printJson(await call(opts, 'POST', ADMIN_ROUTES.resume)),
  );
  withTarget(
    admin
      .command('cancel')
      .description('Take a leased unit back from its worker; it is leased again to someone.')
      .argument('<unit>', 'the unit id (dashboard, event log)'),
  ).action(async (unit: string, opts: AdminOptions) =>
    printJson(await call(opts, 'POST', ADMIN_ROUTES.cancelUnit.path(unit))),
  );
  withTarget(
    admin
      .command('revoke')
      .description("Revoke a volunteer's token now: its workers are dropped, their units go back.")
      .argument('<token-id>', 'the token id (arbor token list)'),
  ).action(async (id: string, opts: AdminOptions) =>
    printJson(await call(opts, 'POST', ADMIN_ROUTES.revokeToken.path(id))),
  );
  withTarget(
    admin
      .command('export')
      .description('Save the current model (frozen top + every shard now) as a safetensors checkpoint.')
      .argument('<file>', 'where to write it'),
  ).action(async (file: string, opts: AdminOptions) => {
    const bytes = new Uint8Array(await (await call(opts, 'GET', ADMIN_ROUTES.model)).arrayBuffer());
    const { decodeCheckpointFile, writeFileAtomically } = await import('../shared/checkpoint/fff-file.ts');
    decodeCheckpointFile(bytes, `${opts.url}${ADMIN_ROUTES.model}`);
    await writeFileAtomically(file, bytes);
    process.stdout.write(`${file}: ${bytes.byteLength} bytes (arbor eval --model ${file})\n`);
  });
  return admin;
}
