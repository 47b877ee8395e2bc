/**
 * The operator's side against a real coordinator on loopback: the admin token guards
 * pause, resume, cancel, revoke and export (also through `arbor admin`); a revoked
 * volunteer's socket is dropped at once, also when revoked by `arbor token revoke` on the
 * database; a read token closes the dashboard's data and /metrics; open enrolment issues
 * tokens within its per-address and hourly limits, and the worker keeps its token.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import WebSocket from 'ws';
import { ADMIN_ROUTES, HEADERS, ROUTES } from '../../proto/routes.ts';
import { CHECKSUM_KEY, encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import { readFFFCheckpoint } from '../../shared/checkpoint/fff-file.ts';
import { enrolledToken } from '../../worker/enrolment.ts';
import { type SmallCoordinator, smallDelta, startSmallCoordinator } from '../helpers/small-job.ts';
import { joinAs } from '../helpers/volunteer.ts';

const run = promisify(execFile);
const ADMIN = 'admin-secret';
const READ = 'read-secret';
const sockets: WebSocket[] = [];
const coordinators: SmallCoordinator[] = [];
const scratch = mkdtempSync(join(tmpdir(), 'arbor-operator-'));
after(async () => {
  for (const ws of sockets) ws.terminate();
  for (const c of coordinators) await c.close();
  rmSync(scratch, { recursive: true, force: true });
});

async function start(options: Parameters<typeof startSmallCoordinator>[0]): Promise<SmallCoordinator> {
  const small = await startSmallCoordinator(options);
  coordinators.push(small);
  return small;
}

const post = (small: SmallCoordinator, path: string, token?: string, body?: unknown) =>
  fetch(`${small.coordinator.url}${path}`, {
    method: 'POST',
    headers: {
      ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });

const closed = (ws: WebSocket): Promise<number> =>
  ws.readyState === ws.CLOSED ? Promise.resolve(-1) : once(ws, 'close').then(([code]) => code as number);

const arbor = async (...args: string[]): Promise<string> =>
  (
    await run(process.execPath, ['bin/arbor.js', ...args], {
      env: { ...process.env, ARBOR_LOG_LEVEL: 'error' },
    })
  ).stdout;

void describe('admin token', () => {
  void it('refuses every control without a configured admin token, or with a wrong one', async () => {
    const bare = await start({ token: 'w' });
    const answer = await post(bare, ADMIN_ROUTES.pause, 'anything');
    assert.equal(answer.status, 401);
    assert.match(((await answer.json()) as { message: string }).message, /no admin token/);
    const guarded = await start({ token: 'w', access: { adminToken: ADMIN } });
    for (const token of [undefined, 'w', `${ADMIN}x`]) {
      const refused = await post(guarded, ADMIN_ROUTES.pause, token);
      assert.equal(refused.status, 401);
      assert.match(
        ((await refused.json()) as { message: string }).message,
        token === undefined ? /^admin token required: pass --admin-token/ : /^admin token rejected/,
      );
      assert.equal((await fetch(`${guarded.coordinator.url}${ADMIN_ROUTES.model}`)).status, 401);
    }
    assert.equal(guarded.coordinator.core.controls.paused, false);
  });

  void it('pauses leasing and resumes it; the status and the worker are told why', async () => {
    const small = await start({ token: 'w', access: { adminToken: ADMIN } });
    assert.deepEqual(await (await post(small, ADMIN_ROUTES.pause, ADMIN)).json(), { paused: true });
    const volunteer = await joinAs(small.wsUrl, 'w', 'eve', sockets);
    volunteer.ws.send(JSON.stringify({ type: 'request_work' }));
    const refused = await volunteer.next();
    assert.equal(refused.type, 'no_work');
    assert.match(refused.type === 'no_work' ? (refused.reason ?? '') : '', /paused/);
    const status = (await (await fetch(`${small.coordinator.url}/v1/status`)).json()) as { paused: boolean };
    assert.equal(status.paused, true);
    await post(small, ADMIN_ROUTES.resume, ADMIN);
    await volunteer.requestWork();
  });

  void it('cancels a lease: the worker is told, the unit is leased again, the old lease uploads nothing', async () => {
    const small = await start({ token: 'w', access: { adminToken: ADMIN } });
    const holder = await joinAs(small.wsUrl, 'w', 'holder', sockets);
    const assign = await holder.requestWork();
    const answer = await post(small, ADMIN_ROUTES.cancelUnit.path(assign.unit_id), ADMIN);
    assert.deepEqual(await answer.json(), {
      unit: assign.unit_id,
      cancelled: true,
      worker: holder.welcome.worker_id,
    });
    const cancel = await holder.next();
    assert.deepEqual(cancel, {
      type: 'cancel',
      unit_id: assign.unit_id,
      reason: 'cancelled by the operator',
    });
    const upload = await fetch(`${small.coordinator.url}${ROUTES.unitResult.path(assign.unit_id)}`, {
      method: 'PUT',
      headers: {
        authorization: 'Bearer w',
        [HEADERS.worker]: holder.welcome.worker_id,
        [HEADERS.lease]: assign.lease_token,
        'content-type': 'application/octet-stream',
      },
      body: Buffer.from(encodeFFF(smallDelta(small.coordinator.job.subtreeShape))),
    });
    assert.equal(upload.status, 409);
    const other = await joinAs(small.wsUrl, 'w', 'other', sockets);
    assert.equal((await other.requestWork()).unit_id, assign.unit_id);
    assert.equal((await post(small, ADMIN_ROUTES.cancelUnit.path('no-such-unit'), ADMIN)).status, 404);
  });

  void it('revokes a volunteer: its socket is closed at once and its unit goes back', async () => {
    const small = await start({ access: { adminToken: ADMIN } });
    const issued = JSON.parse(
      await arbor('token', 'create', '--name', 'mallory', '--json', '--db', join(small.dir, 'arbor.db')),
    ) as { id: string; token: string };
    const mallory = await joinAs(small.wsUrl, issued.token, 'mallory', sockets);
    const assign = await mallory.requestWork();
    const revoked = await post(small, ADMIN_ROUTES.revokeToken.path(issued.id), ADMIN);
    assert.equal(((await revoked.json()) as { name: string }).name, 'mallory');
    assert.equal(await closed(mallory.ws), 4003);
    assert.equal(small.coordinator.store.getUnit(assign.unit_id)?.state, 'ready');
    assert.equal((await post(small, ADMIN_ROUTES.revokeToken.path(issued.id), ADMIN)).status, 404);
  });

  void it('drops a worker whose token `arbor token revoke` revoked in the database', async () => {
    const small = await start({});
    const db = join(small.dir, 'arbor.db');
    const issued = JSON.parse(await arbor('token', 'create', '--name', 'trudy', '--json', '--db', db)) as {
      id: string;
      token: string;
    };
    const trudy = await joinAs(small.wsUrl, issued.token, 'trudy', sockets);
    await arbor('token', 'revoke', issued.id, '--db', db);
    small.coordinator.core.upkeep();
    assert.equal(await closed(trudy.ws), 4003);
  });

  void it('`arbor admin` pauses and exports the current model as a checkpoint of the whole tree', async () => {
    const small = await start({ token: 'w', access: { adminToken: ADMIN } });
    const url = small.coordinator.url;
    assert.deepEqual(JSON.parse(await arbor('admin', 'pause', '--url', url, '--token', ADMIN)), {
      paused: true,
    });
    const file = join(scratch, 'exported.safetensors');
    await arbor('admin', 'export', file, '--url', url, '--token', ADMIN);
    const { weights: model, metadata } = await readFFFCheckpoint(file);
    assert.deepEqual(model.shape, small.coordinator.job.shape);
    assert.match(
      metadata[CHECKSUM_KEY] ?? '',
      /^[0-9a-f]{64}$/,
      'verified on reading, as every checkpoint file',
    );
    await assert.rejects(arbor('admin', 'resume', '--url', url, '--token', 'wrong'), /ADMIN_REFUSED.*401/s);
  });
});

void describe('read token', () => {
  void it('closes the dashboard data, the event stream and /metrics; the page stays open', async () => {
    const small = await start({ token: 'w', access: { adminToken: ADMIN, readToken: READ } });
    const url = small.coordinator.url;
    for (const path of ['/v1/status', '/v1/shards', '/v1/workers', '/v1/series', '/v1/events', '/metrics'])
      assert.equal((await fetch(`${url}${path}`)).status, 401, path);
    assert.equal((await fetch(`${url}/`)).status, 200);
    const bearer = { headers: { authorization: `Bearer ${READ}` } };
    assert.equal((await fetch(`${url}/v1/status`, bearer)).status, 200);
    assert.equal(
      (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).status,
      200,
    );
    assert.equal((await fetch(`${url}/v1/status?token=${READ}`)).status, 200);
    assert.equal((await fetch(`${url}/v1/status?token=w`)).status, 401);
    const report = JSON.parse(await arbor('status', '--url', url, '--token', READ, '--json')) as {
      status: { phase: string };
    };
    assert.equal(report.status.phase, 'training');
  });
});

void describe('open enrolment', () => {
  void it('is refused when closed', async () => {
    const small = await start({ token: 'w' });
    assert.equal((await post(small, ROUTES.enrol, undefined, { name: 'newcomer' })).status, 401);
  });

  void it('issues a token per newcomer within the limits; without one no worker is admitted', async () => {
    const small = await start({
      access: { enrolment: true },
      limits: { maxEnrolmentsPerIpPerHour: 2, maxEnrolmentsPerHour: 3 },
    });
    const upgrade = new WebSocket(small.wsUrl);
    upgrade.on('error', () => undefined);
    const [, response] = (await once(upgrade, 'unexpected-response')) as [unknown, { statusCode: number }];
    assert.equal(response.statusCode, 401);

    const first = await post(small, ROUTES.enrol, undefined, { name: 'ada' });
    assert.equal(first.status, 201);
    const issued = (await first.json()) as { token: string; worker_id: string };
    const ada = await joinAs(small.wsUrl, issued.token, 'someone else', sockets);
    assert.equal(ada.welcome.worker_id, issued.worker_id);

    assert.equal((await post(small, ROUTES.enrol, undefined, { name: '' })).status, 400);
    assert.equal((await post(small, ROUTES.enrol, undefined, { name: 'x'.repeat(65) })).status, 400);
    assert.equal((await post(small, ROUTES.enrol, undefined, { name: 'bob' })).status, 201);
    const third = await post(small, ROUTES.enrol, undefined, { name: 'carol' });
    assert.equal(third.status, 429);
    assert.equal(((await third.json()) as { code: string }).code, 'RATE_LIMITED');
    assert.equal(small.coordinator.store.listTokens().length, 2);
  });

  void it('the worker enrols once and keeps its token for that coordinator', async () => {
    const small = await start({ access: { enrolment: true } });
    const file = join(scratch, 'tokens', 'volunteer-tokens.json');
    const log = pino({ level: 'silent' });
    const token = await enrolledToken(small.wsUrl, 'kept', file, log);
    assert.ok(token !== undefined && existsSync(file));
    assert.equal(await enrolledToken(small.wsUrl, 'kept', file, log), token);
    assert.equal(small.coordinator.store.listTokens().length, 1);
    const closedOne = await start({ token: 'w' });
    assert.equal(await enrolledToken(closedOne.wsUrl, 'kept', file, log), undefined);
  });
});
