/**
 * buildApp through app.inject, no socket: every refusal is `{code, message, retryable}`,
 * worker routes want the token and say so, the read API answers from the read model.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import pino from 'pino';
import { type CoordinatorApp, buildApp } from '../../coordinator/http/app.ts';
import { DEFAULT_LIMITS } from '../../coordinator/http/limits.ts';
import { ReadModel } from '../../coordinator/read/read-model.ts';
import { StatusSchema } from '../../proto/dashboard.ts';
import { ERRORS, type ErrorCode } from '../../proto/errors.ts';
import { HEADERS, ROUTES } from '../../proto/routes.ts';
import { PROTOCOL_VERSION } from '../../proto/version.ts';
import { type SeededCore, seededCore } from '../helpers/small-job.ts';

const TOKEN = 'inject-secret';
let opened: { s: SeededCore; built: CoordinatorApp } | undefined;

afterEach(async () => {
  await opened?.built.app.close();
  opened?.s.cleanup();
  opened = undefined;
});

async function app(): Promise<{ s: SeededCore; built: CoordinatorApp }> {
  const s = await seededCore({}, { sharedToken: TOKEN });
  const built = buildApp(
    { core: s.core, read: new ReadModel(s.core, s.store, s.blobs, s.clock), blobs: s.blobs },
    {
      maxResultBytes: 1 << 20,
      limits: DEFAULT_LIMITS,
      heartbeatMs: 1000,
      retryAfterMs: 1000,
      eventPollMs: 1000,
      workerPackage: () => Promise.reject(new Error('not built in this test')),
      clock: s.clock,
      log: pino({ level: 'silent' }),
    },
  );
  await built.app.ready();
  opened = { s, built };
  return opened;
}

function assertWireError(response: { statusCode: number; json(): unknown }, code: ErrorCode): string {
  assert.equal(response.statusCode, ERRORS[code].httpStatus);
  const body = response.json() as Record<string, unknown>;
  assert.deepEqual(Object.keys(body).sort(), ['code', 'message', 'retryable']);
  assert.equal(body['code'], code);
  assert.equal(body['retryable'], ERRORS[code].retryable);
  return body['message'] as string;
}

void describe('buildApp', () => {
  void it('answers an unknown route with NOT_FOUND in the catalogue format', async () => {
    const { built } = await app();
    assertWireError(await built.app.inject({ method: 'GET', url: '/v2/nothing' }), 'NOT_FOUND');
  });

  void it('bans an address that keeps failing to authenticate, before any token is looked at', async () => {
    const { built, s } = await app();
    const blob = s.store.listShards()[0]!.dataBlob;
    const from = (remoteAddress: string, token: string) =>
      built.app.inject({
        method: 'GET',
        url: ROUTES.blob.path(blob),
        remoteAddress,
        headers: { authorization: `Bearer ${token}` },
      });
    const failures = DEFAULT_LIMITS.maxAuthFailuresPerIpPerMinute;
    const banned = async (minutes: number) => {
      for (let i = 0; i <= failures; i++) assertWireError(await from('10.0.0.1', 'guess'), 'UNAUTHORIZED');
      const message = assertWireError(await from('10.0.0.1', TOKEN), 'RATE_LIMITED');
      assert.match(message, new RegExp(`try again in ${minutes * 60} s`), 'even with the right token');
      assert.equal((await from('10.0.0.2', TOKEN)).statusCode, 200, 'other addresses are not touched');
      s.clock.advance(minutes * 60_000 - 1);
      assertWireError(await from('10.0.0.1', TOKEN), 'RATE_LIMITED');
      s.clock.advance(1);
      assert.equal((await from('10.0.0.1', TOKEN)).statusCode, 200, 'let back in when the ban ends');
    };
    await banned(1);
    await banned(2);
    s.clock.advance(61 * 60_000);
    await banned(1);
  });

  void it('refuses blobs and results without the token, saying that a token is required', async () => {
    const { built, s } = await app();
    const blob = s.store.listShards()[0]!.dataBlob;
    const message = assertWireError(
      await built.app.inject({ method: 'GET', url: ROUTES.blob.path(blob) }),
      'UNAUTHORIZED',
    );
    assert.match(message, /requires a token.*--token.*ARBOR_TOKEN/);
    assertWireError(
      await built.app.inject({ method: 'PUT', url: ROUTES.unitResult.path('r0000-s0000'), payload: 'x' }),
      'UNAUTHORIZED',
    );
    const ok = await built.app.inject({
      method: 'GET',
      url: ROUTES.blob.path(blob),
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.rawPayload.byteLength, s.blobs.size(blob));
  });

  void it('refuses a result without its headers as BAD_MESSAGE, naming the header', async () => {
    const { built } = await app();
    const message = assertWireError(
      await built.app.inject({
        method: 'PUT',
        url: ROUTES.unitResult.path('r0000-s0000'),
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' },
        payload: Buffer.from([1, 2, 3]),
      }),
      'BAD_MESSAGE',
    );
    assert.match(message, new RegExp(HEADERS.worker));
  });

  void it('serves the status from the read model, open to all, with the clock of the core', async () => {
    const { built, s } = await app();
    const response = await built.app.inject({ method: 'GET', url: '/v1/status' });
    assert.equal(response.statusCode, 200);
    const status: unknown = response.json();
    assert.ok(Value.Check(StatusSchema, status));
    assert.equal(status.now_ms, s.clock.now());
    assert.equal(status.phase, 'training');
    assert.equal(status.progress.eta_s, null, 'no worker, no rate: unknown');
    assert.equal(status.units['ready'], s.store.unitsByState().ready);
  });

  void it('says since when no volunteer has been connected, and what the crowd did with its time', async () => {
    const { built, s } = await app();
    const status = async () => {
      const body: unknown = (await built.app.inject({ method: 'GET', url: '/v1/status' })).json();
      assert.ok(Value.Check(StatusSchema, body));
      return body;
    };
    const started = s.clock.now();
    s.clock.advance(300_000);
    assert.equal((await status()).workers.none_since_ms, started, 'none since the coordinator started');
    const hello = {
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      name: 'v',
      capabilities: { backend: 'wasm', threads: 1, gpu: false, samples_per_s: 100 },
    } as const;
    const id = s.core.connect(hello).id;
    assert.equal((await status()).workers.none_since_ms, null);
    s.core.assign(id);
    s.clock.advance(20_000);
    s.core.disconnect(id);
    const after = await status();
    assert.equal(after.workers.none_since_ms, s.clock.now());
    assert.equal(after.crowd.utilization, 0, 'its unit never came back');
    assert.equal(after.crowd.wasted_fraction, 1, 'connected 20 s, all of it on a unit that was not merged');
  });

  void it('says why the volunteer package is missing instead of failing the page', async () => {
    const { built } = await app();
    const join = await built.app.inject({ method: 'GET', url: '/v1/join' });
    assert.equal(join.statusCode, 200);
    assert.deepEqual(
      { ...(join.json() as Record<string, unknown>), version: 'x' },
      {
        package_path: null,
        version: 'x',
        token_required: true,
        enrolment: false,
        error: 'the volunteer package could not be built: not built in this test',
      },
    );
    assertWireError(await built.app.inject({ method: 'GET', url: ROUTES.workerPackage }), 'INTERNAL');
  });
});
