/**
 * Volunteer tokens, issued with `arbor token create` against a running coordinator's
 * database: once one exists every worker needs a token; a worker's id (and credit) follows
 * its token, not its name; a token cannot speak for another's worker; a revoked one is refused.
 */
import assert from 'node:assert/strict';
import type { Workers } from '../../proto/dashboard.ts';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { join as joinPath } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import type { CoordinatorMessage, Welcome } from '../../proto/messages.ts';
import { parseCoordinatorMessage } from '../../proto/parse.ts';
import { HEADERS, ROUTES } from '../../proto/routes.ts';
import { type SmallCoordinator, startSmallCoordinator } from '../helpers/small-job.ts';
import { helloFrame } from '../helpers/volunteer.ts';

const run = promisify(execFile);
let small: SmallCoordinator;
const sockets: WebSocket[] = [];
before(async () => {
  small = await startSmallCoordinator();
});
after(async () => {
  for (const ws of sockets) ws.terminate();
  await small?.close();
});

const arborToken = async (...args: string[]): Promise<string> =>
  (await run(process.execPath, ['bin/arbor.js', 'token', ...args, '--db', joinPath(small.dir, 'arbor.db')]))
    .stdout;

async function create(name: string): Promise<{ id: string; token: string }> {
  return JSON.parse(await arborToken('create', '--name', name, '--json')) as { id: string; token: string };
}

/** Connects with `token` and says hello as `name`: the welcome, or the HTTP status of the refusal. */
async function connect(token: string | undefined, name: string): Promise<Welcome | number> {
  const ws = new WebSocket(small.wsUrl, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  sockets.push(ws);
  ws.on('error', () => undefined);
  const opened = await Promise.race([
    once(ws, 'open').then(() => true),
    once(ws, 'unexpected-response').then(([, response]) => (response as IncomingMessage).statusCode ?? 0),
  ]);
  if (opened !== true) return opened as number;
  ws.send(JSON.stringify(helloFrame(name)));
  const [raw] = (await once(ws, 'message')) as [Buffer];
  return parseCoordinatorMessage(raw, 1 << 20) as CoordinatorMessage as Welcome;
}

void describe('volunteer tokens', { timeout: 60_000 }, () => {
  void it('turn an open coordinator into one that wants a token, and bind identity to it', async () => {
    const before = await connect(undefined, 'early');
    assert.equal(typeof before === 'object' && before.type, 'welcome', 'open while no token exists');

    const alice = await create('alice');
    const mallory = await create('mallory');
    assert.match(alice.token, /^arb_[0-9a-f]{12}_/);
    assert.equal(await connect(undefined, 'late'), 401, 'a token is needed now');
    assert.equal(await connect('arb_000000000000_guess', 'guesser'), 401);

    const a = (await connect(alice.token, 'alice')) as Welcome;
    const m = (await connect(mallory.token, 'alice')) as Welcome;
    assert.equal(a.worker_id, `w-${alice.id}`);
    assert.equal(m.worker_id, `w-${mallory.id}`, 'the same name does not give the same identity');
    const { workers } = (await (await fetch(`${small.coordinator.url}/v1/workers`)).json()) as Workers;
    assert.deepEqual(
      workers.map((w) => [w.id, w.name, w.token_name]).sort(),
      [
        [`w-${alice.id}`, 'alice', 'alice'],
        [`w-${mallory.id}`, 'alice', 'mallory'],
        [workers.find((w) => w.name === 'early')!.id, 'early', null],
      ].sort(),
      'the dashboard names each worker by the token it came with',
    );

    // Mallory's token cannot upload as Alice's worker, even before a lease is looked at.
    const response = await fetch(`${small.coordinator.url}${ROUTES.unitResult.path('r0000-s0000')}`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${mallory.token}`,
        'content-type': 'application/octet-stream',
        [HEADERS.worker]: a.worker_id,
        [HEADERS.lease]: 'x',
        [HEADERS.metrics]: JSON.stringify({ train_loss: 0, samples: 1, seconds: 1 }),
      },
      body: new Uint8Array(4),
    });
    assert.equal(response.status, 401);
    assert.match(((await response.json()) as { message: string }).message, /does not speak for worker/);

    assert.match(await arborToken('list'), new RegExp(`${alice.id}  alice .*\\n${mallory.id}  mallory`));
    assert.match(await arborToken('revoke', mallory.id), /revoked/);
    assert.equal(await connect(mallory.token, 'mallory'), 401, 'a revoked token is refused');
    const blob = small.coordinator.store.listShards()[0]!.dataBlob;
    const refused = await fetch(`${small.coordinator.url}${ROUTES.blob.path(blob)}`, {
      headers: { authorization: `Bearer ${mallory.token}` },
    });
    assert.equal(refused.status, 401);
    assert.equal(
      ((await refused.json()) as { message: string }).message,
      'the coordinator refused this token',
    );
    const joinInfo = await fetch(`${small.coordinator.url}/v1/join`);
    assert.equal(((await joinInfo.json()) as { token_required: boolean }).token_required, true);
  });
});
