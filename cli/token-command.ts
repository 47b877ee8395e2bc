/**
 * `arbor token create|list|revoke --db FILE`: volunteer tokens, one per volunteer. Once a
 * database holds a token, every worker needs one (or the job's shared --token); a worker's
 * identity, and so its credit, follows its token, not the name it gives.
 */
import { Command } from 'commander';
import { issueVolunteerToken } from '../coordinator/core/identity.ts';
import { SqliteStore } from '../coordinator/store/sqlite-store.ts';

const DB_HELP = 'the coordinator database (the same --db as arbor coordinator)';

function withStore<T>(db: string, fn: (store: SqliteStore) => T): T {
  const store = new SqliteStore(db);
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

export function tokenCommand(): Command {
  const token = new Command('token').description('Volunteer tokens: create, list, revoke.');
  token
    .command('create')
    .description('Issue a token for one volunteer; it is printed once and stored only as a hash.')
    .requiredOption('--name <name>', 'who it is for (shown on the dashboard beside the worker)')
    .option('--db <file>', DB_HELP, 'arbor.db')
    .option('--json', 'print {id, name, token} as one JSON object')
    .action((opts: { name: string; db: string; json?: boolean }) => {
      const { token: secret, row } = withStore(opts.db, (store) =>
        issueVolunteerToken(store, opts.name, Date.now()),
      );
      process.stdout.write(
        opts.json
          ? `${JSON.stringify({ id: row.id, name: row.name, token: secret })}\n`
          : `${secret}\n(token ${row.id} for ${row.name}; shown once: give it to the volunteer)\n`,
      );
    });
  token
    .command('list')
    .description('Every token: id, name, created, revoked (never the token itself).')
    .option('--db <file>', DB_HELP, 'arbor.db')
    .option('--json', 'print a JSON array')
    .action((opts: { db: string; json?: boolean }) => {
      const rows = withStore(opts.db, (store) => store.listTokens());
      const view = rows.map((r) => ({
        id: r.id,
        name: r.name,
        created: new Date(r.createdMs).toISOString(),
        revoked: r.revokedMs === null ? null : new Date(r.revokedMs).toISOString(),
      }));
      process.stdout.write(
        opts.json
          ? `${JSON.stringify(view)}\n`
          : view
              .map((r) => `${r.id}  ${r.name}  ${r.created}${r.revoked ? `  revoked ${r.revoked}` : ''}\n`)
              .join('') || 'no tokens\n',
      );
    });
  token
    .command('revoke')
    .description(
      'Refuse a token from now on: a running coordinator drops its workers within a second (the credit earned stays).',
    )
    .argument('<id>', 'the token id shown by create and list')
    .option('--db <file>', DB_HELP, 'arbor.db')
    .action((id: string, opts: { db: string }) => {
      if (!withStore(opts.db, (store) => store.revokeToken(id, Date.now())))
        throw new Error(`no active token ${id} in ${opts.db}`);
      process.stdout.write(`token ${id} revoked\n`);
    });
  return token;
}
