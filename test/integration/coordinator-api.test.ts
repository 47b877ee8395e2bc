/**
 * The coordinator's wire surface over real loopback sockets: blob downloads (caching,
 * ranges, auth), the worker WebSocket (upgrade, hello, framing errors, leases) and result
 * uploads with every way a delta can be refused, against an in-process coordinator with a
 * real SQLite file.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket, { type RawData } from 'ws';
import type { RunningCoordinator } from '../../coordinator/main.ts';
import { ERRORS, type ErrorCode } from '../../proto/errors.ts';
import type { Assign, CoordinatorMessage, Welcome } from '../../proto/messages.ts';
import { parseCoordinatorMessage, parseResultResponse } from '../../proto/parse.ts';
import { PROTOCOL_VERSION } from '../../proto/version.ts';
import { selectBackend } from '../../shared/backend.ts';
import { FFF_CHECKPOINT_FORMAT, encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import { type HostTensor, encodeSafetensors } from '../../shared/checkpoint/safetensors.ts';
import { type FFFWeights, TENSOR_NAMES, tensorDims, zeroWeights } from '../../shared/fff/weights.ts';
import { nextRetry } from '../../coordinator/core/retries.ts';
import { ManualClock } from '../../shared/clock.ts';
import { coordinatorUrl, spawnArbor } from '../helpers/processes.ts';
import { type SmallCoordinator, smallDelta, startSmallCoordinator } from '../helpers/small-job.ts';

const TOKEN = 'sekret';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const STEP_MS = 5_000;

const dir = mkdtempSync(join(tmpdir(), 'arbor-api-'));
const clock = new ManualClock(Date.now());
let small: SmallCoordinator;
let coordinator: RunningCoordinator;
let wsUrl: string;
const clients = new Set<WebSocket>();

before(async () => {
  await selectBackend('wasm');
  small = await startSmallCoordinator({
    token: TOKEN,
    clock,
    settings: { shard_epochs: 4, max_leases_per_worker: 20, validation: { max_retries: 50 } },
  });
  ({ coordinator, wsUrl } = small);
});

after(async () => {
  for (const ws of clients) ws.terminate();
  await small?.close();
  rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------- helpers

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

function withTimeout<T>(promise: Promise<T>, what: string, ms = STEP_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function expectWireError(response: Response, status: number, code: ErrorCode): Promise<string> {
  assert.equal(response.status, status, `HTTP status for ${code}`);
  const body = (await response.json()) as Record<string, unknown>;
  assert.deepEqual(Object.keys(body).sort(), ['code', 'message', 'retryable']);
  assert.equal(body['code'], code);
  assert.equal(body['retryable'], ERRORS[code].retryable);
  assert.equal(typeof body['message'], 'string');
  assert.ok((body['message'] as string).length > 0, 'the error says what went wrong');
  return body['message'] as string;
}

/**
 * A WebSocket client that queues the coordinator's frames, each validated against the
 * schema; a frame that does not validate makes `next` reject (never an uncaught throw).
 */
class Client {
  private readonly queue: (CoordinatorMessage | Error)[] = [];
  private readonly waiting: ((message: CoordinatorMessage | Error) => void)[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (raw: RawData, isBinary: boolean) => {
      let message: CoordinatorMessage | Error;
      try {
        if (isBinary) throw new Error('the coordinator sent a binary frame');
        message = parseCoordinatorMessage(raw as Buffer, 1 << 20);
      } catch (error) {
        message = error as Error;
      }
      const waiter = this.waiting.shift();
      if (waiter) waiter(message);
      else this.queue.push(message);
    });
    this.closed = new Promise((resolve) => {
      ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }));
    });
  }

  static async open(headers: Record<string, string> = AUTH): Promise<Client> {
    const ws = new WebSocket(wsUrl, { headers });
    clients.add(ws);
    ws.on('error', () => undefined); // surfaces as 'close'; `once(ws, 'open')` still rejects
    ws.once('close', () => clients.delete(ws));
    await withTimeout(once(ws, 'open'), 'the WebSocket to open');
    return new Client(ws);
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  async next(what = 'a frame'): Promise<CoordinatorMessage> {
    const message =
      this.queue.shift() ??
      (await withTimeout(
        new Promise<CoordinatorMessage | Error>((resolve) => this.waiting.push(resolve)),
        what,
      ));
    if (message instanceof Error) throw message;
    return message;
  }

  async hello(name: string): Promise<Welcome> {
    this.send({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      name,
      capabilities: { backend: 'wasm', threads: 1, gpu: false, samples_per_s: 1000 },
    });
    const welcome = await this.next('welcome');
    assert.equal(welcome.type, 'welcome', JSON.stringify(welcome));
    return welcome as Welcome;
  }

  /**
   * Frames on one socket are handled in order: once the coordinator answers this heartbeat
   * for a unit nobody holds (with a cancel), everything sent before it has been handled.
   */
  async barrier(): Promise<void> {
    this.send({ type: 'heartbeat', unit_id: 'barrier', lease_token: 'x', step: 0, total_steps: 1 });
    const cancel = await this.next('the barrier');
    assert.equal(cancel.type === 'cancel' && cancel.unit_id, 'barrier', JSON.stringify(cancel));
  }

  async requestWork(): Promise<Assign> {
    this.send({ type: 'request_work' });
    const assign = await this.next('assign');
    assert.equal(assign.type, 'assign', JSON.stringify(assign));
    return assign as Assign;
  }

  close(): Promise<{ code: number; reason: string }> {
    this.ws.close();
    return withTimeout(this.closed, 'the socket to close');
  }
}

/** Upgrade attempts the server refuses: the HTTP status it answered with. */
async function refusedUpgrade(url: string, headers: Record<string, string>): Promise<number> {
  const ws = new WebSocket(url, { headers });
  ws.on('error', () => undefined);
  try {
    const [, response] = (await withTimeout(once(ws, 'unexpected-response'), 'the refusal')) as [
      unknown,
      IncomingMessage,
    ];
    response.resume();
    return response.statusCode ?? 0;
  } finally {
    ws.terminate();
  }
}

interface Lease {
  readonly client: Client;
  readonly workerId: string;
  readonly assign: Assign;
}

let leases = 0;
/** A fresh worker connection holding one unit. */
async function lease(): Promise<Lease> {
  const client = await Client.open();
  const welcome = await client.hello(`tester-${++leases}`);
  const assign = await client.requestWork();
  return { client, workerId: welcome.worker_id, assign };
}

/** Hands the unit back over the socket and waits until it can be leased again. */
async function release(l: Lease): Promise<void> {
  l.client.send({
    type: 'release',
    unit_id: l.assign.unit_id,
    lease_token: l.assign.lease_token,
    reason: 'test',
  });
  await l.client.barrier();
  assert.equal(coordinator.store.getUnit(l.assign.unit_id)?.state, 'ready', 'ready again after release');
  await l.client.close();
}

/** What an honest worker reports for a unit: the samples the unit trains. */
const metricsFor = (unitId: string): string => {
  const unit = coordinator.store.getUnit(unitId);
  const shard = unit === undefined ? undefined : coordinator.store.getShard(unit.shard);
  const samples = shard === undefined ? 1 : coordinator.job.schedule.unitSamples(shard, { id: unitId });
  return JSON.stringify({ train_loss: 0.5, samples, seconds: 1 });
};

function putResult(
  unitId: string,
  body: Uint8Array,
  headers: Record<string, string | undefined>,
): Promise<Response> {
  const defined = Object.fromEntries(
    Object.entries({
      ...AUTH,
      'content-type': 'application/octet-stream',
      'x-arbor-metrics': metricsFor(unitId),
      ...headers,
    }).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
  return fetch(`${coordinator.url}/v1/units/${encodeURIComponent(unitId)}/result`, {
    method: 'PUT',
    headers: defined,
    body: new Uint8Array(body),
  });
}

const submit = (l: Lease, body: Uint8Array, headers: Record<string, string | undefined> = {}) =>
  putResult(l.assign.unit_id, body, {
    'x-arbor-worker': l.workerId,
    'x-arbor-lease': l.assign.lease_token,
    ...headers,
  });

/** Expects 422 `{status: 'rejected', reason}`; returns the reason. */
async function expectRejected(response: Response): Promise<string> {
  assert.equal(response.status, 422);
  const answer = parseResultResponse(Buffer.from(await response.arrayBuffer()));
  assert.equal(answer.status, 'rejected');
  assert.equal(typeof answer.reason, 'string');
  return answer.reason!;
}

/** The unit's rejection is on record, and a fresh unit for the same shard replaces it. */
function assertRejectedAndReplaced(l: Lease, code: 'DELTA_INVALID' | 'DELTA_REJECTED'): void {
  const { store } = coordinator;
  const result = store.getResult(l.assign.unit_id);
  assert.equal(result?.status, 'rejected');
  assert.equal(result.workerId, l.workerId);
  assert.equal(result.mergedVersion, null);
  assert.equal(store.getUnit(l.assign.unit_id)?.state, 'rejected');
  const replacement = store.getUnit(nextRetry(store.getUnit(l.assign.unit_id)!, 'w', Infinity)!.id);
  assert.ok(replacement, `a replacement for ${l.assign.unit_id}`);
  assert.equal(replacement.shard, l.assign.shard);
  assert.notEqual(replacement.state, 'rejected');
  const event = store
    .eventsAfter(0, 10_000)
    .find((e) => e.kind === 'rejected' && (e.data as { unit?: string }).unit === l.assign.unit_id);
  assert.equal((event?.data as { code?: string } | undefined)?.code, code);
}

const subtreeZeros = (): FFFWeights => zeroWeights(coordinator.job.subtreeShape);

// ---------------------------------------------------------------- blobs

void describe('GET /v1/blobs/:sha256', { timeout: 30_000 }, () => {
  const blobUrl = (sha: string) => `${coordinator.url}/v1/blobs/${sha}`;
  const anyBlob = () => coordinator.store.listShards()[0]!.weightsBlob;

  void it('serves the exact bytes with an ETag, immutable caching and a length', async () => {
    const sha = anyBlob();
    const response = await fetch(blobUrl(sha), { headers: AUTH });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('etag'), `"${sha}"`);
    assert.match(response.headers.get('cache-control') ?? '', /\bimmutable\b/);
    assert.equal(response.headers.get('accept-ranges'), 'bytes');
    assert.equal(response.headers.get('content-type'), 'application/octet-stream');
    const bytes = new Uint8Array(await response.arrayBuffer());
    assert.equal(Number(response.headers.get('content-length')), bytes.byteLength);
    assert.ok(bytes.byteLength > 10);
    assert.equal(sha256(bytes), sha);
  });

  void it('answers a matching If-None-Match with 304 and no body', async () => {
    const sha = anyBlob();
    const response = await fetch(blobUrl(sha), { headers: { ...AUTH, 'if-none-match': `"${sha}"` } });
    assert.equal(response.status, 304);
    assert.equal(response.headers.get('etag'), `"${sha}"`);
    assert.equal((await response.arrayBuffer()).byteLength, 0);
    const other = await fetch(blobUrl(sha), { headers: { ...AUTH, 'if-none-match': '"something-else"' } });
    assert.equal(other.status, 200);
    await other.arrayBuffer();
  });

  void it('serves byte ranges (first bytes, suffix, open-ended) with 206 and Content-Range', async () => {
    const sha = anyBlob();
    const full = new Uint8Array(await (await fetch(blobUrl(sha), { headers: AUTH })).arrayBuffer());
    const size = full.byteLength;
    const cases: [string, number, number][] = [
      ['bytes=0-9', 0, 9],
      ['bytes=-10', size - 10, size - 1],
      [`bytes=${size - 5}-`, size - 5, size - 1],
      [`bytes=3-${size + 100}`, 3, size - 1],
    ];
    for (const [range, start, end] of cases) {
      const response = await fetch(blobUrl(sha), { headers: { ...AUTH, range } });
      assert.equal(response.status, 206, range);
      assert.equal(response.headers.get('content-range'), `bytes ${start}-${end}/${size}`, range);
      const part = new Uint8Array(await response.arrayBuffer());
      assert.equal(Number(response.headers.get('content-length')), end - start + 1, range);
      assert.deepEqual(part, full.subarray(start, end + 1), range);
    }
  });

  void it('answers an unsatisfiable range with 416 and the size', async () => {
    const sha = anyBlob();
    const size = await blobSize(sha);
    for (const range of [`bytes=${size}-`, `bytes=${size + 10}-${size + 20}`, 'bytes=-0']) {
      const response = await fetch(blobUrl(sha), { headers: { ...AUTH, range } });
      assert.equal(response.status, 416, range);
      assert.equal(response.headers.get('content-range'), `bytes */${size}`, range);
      await response.arrayBuffer();
    }
  });

  void it('answers an unknown or malformed hash with 404 NOT_FOUND', async () => {
    await expectWireError(await fetch(blobUrl('0'.repeat(64)), { headers: AUTH }), 404, 'NOT_FOUND');
    await expectWireError(await fetch(blobUrl('not-a-hash'), { headers: AUTH }), 404, 'NOT_FOUND');
  });

  void it('refuses a missing or wrong bearer token with 401 UNAUTHORIZED', async () => {
    const sha = anyBlob();
    await expectWireError(await fetch(blobUrl(sha)), 401, 'UNAUTHORIZED');
    await expectWireError(
      await fetch(blobUrl(sha), { headers: { authorization: 'Bearer wrong' } }),
      401,
      'UNAUTHORIZED',
    );
    await expectWireError(
      await fetch(blobUrl(sha), { headers: { authorization: TOKEN } }),
      401,
      'UNAUTHORIZED',
    );
    // Unknown blobs are not probed without the token either.
    await expectWireError(await fetch(blobUrl('0'.repeat(64))), 401, 'UNAUTHORIZED');
  });
});

async function blobSize(sha: string): Promise<number> {
  const response = await fetch(`${coordinator.url}/v1/blobs/${sha}`, { headers: AUTH });
  return (await response.arrayBuffer()).byteLength;
}

// ---------------------------------------------------------------- WebSocket

void describe('WebSocket /v1/ws', { timeout: 30_000 }, () => {
  void it('refuses an upgrade without or with a wrong token with HTTP 401', async () => {
    assert.equal(await refusedUpgrade(wsUrl, {}), 401);
    assert.equal(await refusedUpgrade(wsUrl, { authorization: 'Bearer wrong' }), 401);
  });

  void it('refuses an upgrade on another path with HTTP 404', async () => {
    assert.equal(await refusedUpgrade(wsUrl.replace('/v1/ws', '/v1/nope'), AUTH), 404);
    assert.equal(await refusedUpgrade(wsUrl.replace('/v1/ws', '/'), AUTH), 404);
  });

  void it('answers a non-JSON frame with a BAD_MESSAGE error and close 4000', async () => {
    const client = await Client.open();
    client.send('this is {not json');
    const error = await client.next('error');
    assert.equal(error.type, 'error');
    assert.equal(error.type === 'error' && error.code, 'BAD_MESSAGE');
    assert.equal(error.type === 'error' && error.retryable, false);
    assert.match(error.type === 'error' ? error.message : '', /not JSON/);
    const closed = await withTimeout(client.closed, 'close');
    assert.equal(closed.code, 4000);
    assert.equal(closed.reason, 'BAD_MESSAGE');
  });

  void it('answers request_work before hello with BAD_MESSAGE', async () => {
    const client = await Client.open();
    client.send({ type: 'request_work' });
    const error = await client.next('error');
    assert.equal(error.type, 'error');
    assert.equal(error.type === 'error' && error.code, 'BAD_MESSAGE');
    assert.match(error.type === 'error' ? error.message : '', /before hello/);
    assert.equal((await withTimeout(client.closed, 'close')).code, 4000);
  });

  void it('answers a frame that breaks the schema with BAD_MESSAGE naming the field', async () => {
    const client = await Client.open();
    client.send({ type: 'hello', protocol: PROTOCOL_VERSION, name: 'x', capabilities: {}, extra: 1 });
    const error = await client.next('error');
    assert.equal(error.type === 'error' && error.code, 'BAD_MESSAGE');
    assert.equal((await withTimeout(client.closed, 'close')).code, 4000);
  });

  void it('answers hello with an unknown protocol version with UNSUPPORTED_VERSION and close 4001', async () => {
    const client = await Client.open();
    client.send({
      type: 'hello',
      protocol: 999,
      name: 'future',
      capabilities: { backend: 'wasm', threads: 1, gpu: false, samples_per_s: 1 },
    });
    const error = await client.next('error');
    assert.equal(error.type, 'error');
    assert.equal(error.type === 'error' && error.code, 'UNSUPPORTED_VERSION');
    assert.match(error.type === 'error' ? error.message : '', /999/);
    const closed = await withTimeout(client.closed, 'close');
    assert.equal(closed.code, 4001);
    assert.equal(closed.reason, 'UNSUPPORTED_VERSION');
  });

  void it('answers a second hello and a binary frame with BAD_MESSAGE', async () => {
    const twice = await Client.open();
    await twice.hello('twice');
    twice.send({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      name: 'twice',
      capabilities: { backend: 'wasm', threads: 1, gpu: false, samples_per_s: 1 },
    });
    const again = await twice.next('error');
    assert.equal(again.type === 'error' && again.code, 'BAD_MESSAGE');
    assert.match(again.type === 'error' ? again.message : '', /already/);
    assert.equal((await withTimeout(twice.closed, 'close')).code, 4000);

    const binary = await Client.open();
    binary.ws.send(Buffer.from(JSON.stringify({ type: 'request_work' })), { binary: true });
    const error = await binary.next('error');
    assert.equal(error.type === 'error' && error.code, 'BAD_MESSAGE');
    assert.match(error.type === 'error' ? error.message : '', /binary/);
    assert.equal((await withTimeout(binary.closed, 'close')).code, 4000);
  });

  void it('welcomes a worker, assigns a unit, cancels progress with a wrong lease token', async () => {
    const client = await Client.open();
    const welcome = await client.hello('ws-tester');
    assert.match(welcome.worker_id, /^w-[0-9a-f]{12}/);
    assert.equal(welcome.heartbeat_ms, 200);
    assert.ok(welcome.limits.max_frame_bytes > 0 && welcome.limits.max_result_bytes > 0);

    const assign = await client.requestWork();
    const unit = coordinator.store.getUnit(assign.unit_id);
    assert.equal(unit?.state, 'leased');
    assert.equal(unit.workerId, welcome.worker_id);
    assert.equal(unit.leaseToken, assign.lease_token);
    assert.equal(assign.subtree_depth, coordinator.job.subtreeShape.depth);
    assert.equal(assign.leaf_width, 4);
    assert.equal(assign.input_width, coordinator.job.subtreeShape.inputWidth);
    assert.equal(assign.deadline_ms, clock.now() + coordinator.config.lease_ms);
    const shard = coordinator.store.getShard(assign.shard);
    assert.equal(assign.base_blob.sha256, shard?.weightsBlob);
    assert.equal(assign.base_blob.bytes, await blobSize(assign.base_blob.sha256));
    assert.equal(assign.data_blob.bytes, await blobSize(assign.data_blob.sha256));

    // A correct heartbeat is silent; a wrong token is answered with cancel.
    client.send({
      type: 'heartbeat',
      unit_id: assign.unit_id,
      lease_token: assign.lease_token,
      step: 1,
      total_steps: 10,
    });
    client.send({
      type: 'heartbeat',
      unit_id: assign.unit_id,
      lease_token: 'not-the-token',
      step: 2,
      total_steps: 10,
    });
    const cancel = await client.next('cancel');
    assert.equal(cancel.type, 'cancel', JSON.stringify(cancel));
    assert.equal(cancel.type === 'cancel' && cancel.unit_id, assign.unit_id);
    // Progress on a unit the worker does not hold is cancelled too.
    client.send({ type: 'heartbeat', unit_id: 'r9999-s9999', lease_token: 'x', step: 0, total_steps: 1 });
    const cancelUnknown = await client.next('cancel');
    assert.equal(cancelUnknown.type === 'cancel' && cancelUnknown.unit_id, 'r9999-s9999');
    assert.equal(coordinator.store.getUnit(assign.unit_id)?.state, 'leased', 'the real lease is untouched');

    // Give the unit back so that the upload tests find work.
    await release({ client, workerId: welcome.worker_id, assign });
  });
});

// ---------------------------------------------------------------- result uploads

void describe('PUT /v1/units/:id/result', { timeout: 30_000 }, () => {
  void it('refuses a missing header, bad metrics, an unknown unit, a wrong lease and no token', async () => {
    const l = await lease();
    const body = encodeFFF(subtreeZeros());
    for (const missing of ['x-arbor-worker', 'x-arbor-lease', 'x-arbor-metrics']) {
      const message = await expectWireError(
        await submit(l, body, { [missing]: undefined }),
        400,
        'BAD_MESSAGE',
      );
      assert.match(message, new RegExp(missing));
    }
    for (const metrics of [
      '{not json',
      '[]',
      JSON.stringify({ train_loss: -1, samples: 1, seconds: 1 }),
      JSON.stringify({ train_loss: 1, samples: 1 }),
    ]) {
      await expectWireError(await submit(l, body, { 'x-arbor-metrics': metrics }), 400, 'BAD_MESSAGE');
    }
    await expectWireError(await submit(l, body, { 'content-type': 'application/json' }), 400, 'BAD_MESSAGE');
    await expectWireError(
      await putResult('r9999-s0000', body, {
        'x-arbor-worker': l.workerId,
        'x-arbor-lease': l.assign.lease_token,
      }),
      404,
      'UNKNOWN_UNIT',
    );
    await expectWireError(await submit(l, body, { 'x-arbor-worker': 'w-someone-else' }), 409, 'LEASE_LOST');
    await expectWireError(await submit(l, body, { 'x-arbor-lease': 'stolen' }), 409, 'LEASE_LOST');
    await expectWireError(await submit(l, body, { authorization: undefined }), 401, 'UNAUTHORIZED');
    await expectWireError(await submit(l, body, { authorization: 'Bearer wrong' }), 401, 'UNAUTHORIZED');
    // None of that touched the lease or the shard.
    const unit = coordinator.store.getUnit(l.assign.unit_id);
    assert.equal(unit?.state, 'leased');
    assert.equal(coordinator.store.getResult(l.assign.unit_id), undefined);
    assert.equal(coordinator.store.getShard(l.assign.shard)?.version, l.assign.base_version);
    await release(l);
  });

  void it('rejects a garbage body with 422, records it and reissues the unit', async () => {
    const l = await lease();
    const garbage = Buffer.from('definitely not safetensors, just some bytes');
    const reason = await expectRejected(await submit(l, garbage));
    assertRejectedAndReplaced(l, 'DELTA_INVALID');
    // The same upload again gets the same answer, and nothing new is created.
    const units = coordinator.store.listUnits().length;
    assert.equal(await expectRejected(await submit(l, garbage)), reason);
    assert.equal(coordinator.store.listUnits().length, units);
    // Someone else replaying it is told the lease is gone.
    await expectWireError(await submit(l, garbage, { 'x-arbor-worker': 'w-other' }), 409, 'LEASE_LOST');
    await l.client.close();
  });

  void it('rejects a delta of the wrong shape with 422', async () => {
    const l = await lease();
    const shape = coordinator.job.subtreeShape;
    const reason = await expectRejected(
      await submit(l, encodeFFF(zeroWeights({ ...shape, leafWidth: shape.leafWidth - 1 }))),
    );
    assert.match(reason, /does not match the shard/);
    assertRejectedAndReplaced(l, 'DELTA_INVALID');
    await l.client.close();
  });

  void it('rejects a delta with a NaN with 422', async () => {
    const l = await lease();
    const delta = subtreeZeros();
    delta.tensors['leaves.w1'][7] = Number.NaN;
    const reason = await expectRejected(await submit(l, encodeFFF(delta)));
    assert.match(reason, /leaves\.w1\[7\] is not finite/);
    assertRejectedAndReplaced(l, 'DELTA_INVALID');
    await l.client.close();
  });

  void it('rejects a delta over the norm bound with 422', async () => {
    const l = await lease();
    const delta = subtreeZeros();
    delta.tensors['nodes.bias'][0] = 10 * coordinator.config.validation.max_delta_norm;
    const reason = await expectRejected(await submit(l, encodeFFF(delta)));
    assert.match(reason, /exceeds the bound/);
    assertRejectedAndReplaced(l, 'DELTA_REJECTED');
    await l.client.close();
  });

  void it('rejects a well-formed delta that wrecks validation loss with 422 DELTA_REJECTED', async () => {
    const l = await lease();
    const versionBefore = coordinator.store.getShard(l.assign.shard)?.version;
    // Every leaf now shouts class 0 and never says class 1: norm 300·√8 ≈ 849, under the bound.
    const delta = subtreeZeros();
    delta.tensors['leaves.w1'].fill(1e-6); // touches every leaf, as training would
    const { outputWidth } = coordinator.job.subtreeShape;
    const b2 = delta.tensors['leaves.b2'];
    for (let leaf = 0; leaf * outputWidth < b2.length; leaf++) {
      b2[leaf * outputWidth] = 300;
      b2[leaf * outputWidth + 1] = -300;
    }
    const reason = await expectRejected(await submit(l, encodeFFF(delta)));
    assert.match(reason, /validation loss/);
    assertRejectedAndReplaced(l, 'DELTA_REJECTED');
    assert.equal(coordinator.store.getShard(l.assign.shard)?.version, versionBefore, 'nothing merged');
    await l.client.close();
  });

  void it('keeps a rejection reason within the protocol limit of 1024 characters', async () => {
    const l = await lease();
    // A well-formed FFF file plus one extra tensor with a very long name: the reason names it.
    const shape = coordinator.job.subtreeShape;
    const dims = tensorDims(shape);
    const zeros = subtreeZeros();
    const tensors: Record<string, HostTensor> = {};
    for (const name of TENSOR_NAMES) tensors[name] = { shape: dims[name], data: zeros.tensors[name] };
    tensors['x'.repeat(3000)] = { shape: [1], data: new Float32Array(1) };
    const body = encodeSafetensors(tensors, {
      format: FFF_CHECKPOINT_FORMAT,
      depth: String(shape.depth),
      leaf_width: String(shape.leafWidth),
      input_width: String(shape.inputWidth),
      output_width: String(shape.outputWidth),
      activation: shape.activation,
    });
    const response = await submit(l, body);
    assert.equal(response.status, 422);
    const text = await response.text();
    // The reason is capped, so the answer still fits ResultResponse.reason (maxLength 1024)
    // and the worker can parse it instead of retrying the upload.
    const answer = parseResultResponse(text);
    assert.equal(answer.status, 'rejected');
    assert.match(answer.reason ?? '', /unexpected tensors/);
    assertRejectedAndReplaced(l, 'DELTA_INVALID');
    await l.client.close();
  });

  void it(
    'refuses an upload after the lease expired and was given to another worker',
    { timeout: 20_000 },
    async () => {
      const late = await lease();
      const unitId = late.assign.unit_id;
      const versionBefore = coordinator.store.getShard(late.assign.shard)?.version;
      const attemptsBefore = coordinator.store.getUnit(unitId)!.attempts;
      clock.advance(coordinator.config.lease_ms + 1);
      coordinator.core.expire();
      const expired = coordinator.store.getUnit(unitId);
      assert.equal(expired?.state, 'ready');
      assert.equal(expired.leaseToken, null);
      assert.equal(expired.attempts, attemptsBefore + 1);
      late.client.send({
        type: 'heartbeat',
        unit_id: unitId,
        lease_token: late.assign.lease_token,
        step: 1,
        total_steps: 2,
      });
      const cancel = await late.client.next('cancel');
      assert.equal(cancel.type === 'cancel' && cancel.unit_id, unitId);

      // Another worker takes the unit (it is the oldest ready one, or close to it).
      const other = await Client.open();
      const otherWelcome = await other.hello('taker');
      const taken: Assign[] = [];
      while (!taken.some((a) => a.unit_id === unitId)) {
        assert.ok(taken.length < 10, 'the expired unit is leased again');
        taken.push(await other.requestWork());
      }
      const retaken = taken.find((a) => a.unit_id === unitId)!;
      assert.notEqual(retaken.lease_token, late.assign.lease_token);

      const response = await submit(late, encodeFFF(smallDelta(coordinator.job.subtreeShape)));
      // Expired and reassigned: LEASE_LOST, as the catalogue says, whether or not the sweep ran.
      await expectWireError(response, 409, 'LEASE_LOST');
      assert.equal(coordinator.store.getResult(unitId), undefined, 'nothing recorded');
      assert.equal(coordinator.store.getShard(late.assign.shard)?.version, versionBefore, 'nothing merged');
      const held = coordinator.store.getUnit(unitId);
      assert.equal(held?.state, 'leased');
      assert.equal(held.workerId, otherWelcome.worker_id);
      assert.equal(held.leaseToken, retaken.lease_token, "the new holder's lease is untouched");

      for (const assign of taken)
        other.send({
          type: 'release',
          unit_id: assign.unit_id,
          lease_token: assign.lease_token,
          reason: 'test',
        });
      await other.barrier();
      for (const assign of taken) assert.equal(coordinator.store.getUnit(assign.unit_id)?.state, 'ready');
      await other.close();
      await late.client.close();
    },
  );

  void it('accepts a good delta once; the same upload again gets the same answer, merged once', async () => {
    const l = await lease();
    const { store } = coordinator;
    const before = store.getShard(l.assign.shard)!;
    const body = encodeFFF(smallDelta(coordinator.job.subtreeShape));
    const response = await submit(l, body);
    assert.equal(response.status, 200, await response.clone().text());
    const answer = parseResultResponse(Buffer.from(await response.arrayBuffer()));
    const sender = store.getWorker(l.workerId)!;
    assert.deepEqual(answer, {
      status: 'accepted',
      version: before.version + 1,
      credit: sender.credit,
      rank: store.workersAboveCredit(sender.credit) + 1,
      volunteers: store.workerCount(),
      job_progress: answer.job_progress,
    });
    assert.ok(answer.job_progress! > 0 && answer.job_progress! < 1);
    const after = store.getShard(l.assign.shard)!;
    assert.equal(after.version, before.version + 1);
    const unitSamples = coordinator.job.schedule.unitSamples(before, { id: l.assign.unit_id });
    assert.equal(after.trainedSamples, before.trainedSamples + unitSamples, 'the unit, not the claim');
    assert.equal(store.getUnit(l.assign.unit_id)?.state, 'accepted');
    assert.equal(store.getResult(l.assign.unit_id)?.mergedVersion, after.version);

    const again = await submit(l, body);
    assert.equal(again.status, 200);
    assert.deepEqual(parseResultResponse(Buffer.from(await again.arrayBuffer())), answer);
    const unchanged = store.getShard(l.assign.shard)!;
    assert.equal(unchanged.version, after.version, 'no second merge');
    assert.equal(unchanged.trainedSamples, after.trainedSamples);
    assert.equal(store.listResults().filter((r) => r.unitId === l.assign.unit_id).length, 1);
    assert.equal(store.getWorker(l.workerId)?.unitsDone, 1, 'credited once');
    await l.client.close();
  });
});

// ---------------------------------------------------------------- a frame over the limit

/** The error and first stack lines of a crashed child (skipping the wasm module's source line). */
function crashReason(stderr: string): string {
  const lines = stderr.split('\n').filter((line) => line.trim() !== '' && line.length < 400);
  const first = Math.max(
    0,
    lines.findIndex((line) => /Error\b/.test(line)),
  );
  return lines.slice(first, first + 4).join('\n');
}

/**
 * Run against a coordinator in a child process: if the coordinator dies, only the child
 * does, and the rest of this file still reports.
 */
void describe('WebSocket frames the server cannot read', { timeout: 40_000 }, () => {
  void it('close only that socket (1009 or FRAME_TOO_LARGE 4009); the coordinator keeps serving', async () => {
    // A frame over MAX_FRAME_BYTES (ws maxPayload) or an invalid UTF-8 text frame makes ws
    // emit 'error' on the socket; without a listener the whole coordinator would exit.
    const child = spawnArbor([
      'coordinator',
      '--data',
      'mnist',
      '--depth',
      '3',
      '--frozen',
      '1',
      '--leaf',
      '4',
      '--pretrain-epochs',
      '1',
      '--shard-epochs',
      '1',
      '--local-epochs',
      '1',
      '--db',
      join(dir, 'child.db'),
      '--port',
      '0',
      '--token',
      TOKEN,
    ]);
    try {
      const url = await coordinatorUrl(child);
      const alive = async (what: string) => {
        assert.equal(
          child.child.exitCode,
          null,
          `${what}: the coordinator exited\n${crashReason(child.stderr)}`,
        );
        const response = await fetch(`${url}/v1/blobs/${'0'.repeat(64)}`, { headers: AUTH });
        await expectWireError(response, 404, 'NOT_FOUND');
      };
      await alive('at start');
      const hostile = async (frame: Buffer, binary: boolean): Promise<number> => {
        const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws`, { headers: AUTH });
        ws.on('error', () => undefined);
        await withTimeout(once(ws, 'open'), 'open');
        const closed = withTimeout(once(ws, 'close'), 'close');
        ws.send(frame, { binary });
        const [code] = (await closed) as [number];
        return code;
      };
      const tooLarge = await hostile(Buffer.alloc(70 * 1024, 0x20), false);
      assert.ok([1009, 4009].includes(tooLarge), `close code ${tooLarge} for a frame over the limit`);
      await alive('after a frame over the limit');
      const badUtf8 = await hostile(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), false);
      assert.ok([1007, 4000].includes(badUtf8), `close code ${badUtf8} for invalid UTF-8`);
      await alive('after invalid UTF-8');
    } finally {
      child.child.kill('SIGTERM');
      await Promise.race([child.exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill('SIGKILL');
    }
  });
});

// ---------------------------------------------------------------- shutting down

void describe('RunningCoordinator.close', { timeout: 40_000 }, () => {
  void it('shuts down cleanly while a worker is still connected', async () => {
    // Each session's 'close' handler writes an event: close() must wait for the sockets
    // before it closes the SQLite store. Run in a child process so that a crash stays there.
    const module = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);
    const script = `
      import WebSocket from 'ws';
      const { startSmallCoordinator } = await import(${module('../helpers/small-job.ts')});
      const small = await startSmallCoordinator();
      const c = small.coordinator;
      const ws = new WebSocket(c.url.replace('http', 'ws') + '/v1/ws');
      ws.on('error', () => undefined);
      await new Promise((r) => ws.once('open', r));
      ws.send(JSON.stringify({ type: 'hello', protocol: ${PROTOCOL_VERSION}, name: 'still-here',
        capabilities: { backend: 'wasm', threads: 1, gpu: false, samples_per_s: 1 } }));
      await new Promise((r) => ws.once('message', r));
      await small.close();
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      process.stdout.write('closed cleanly\\n');
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const reap = () => child.kill('SIGKILL');
    process.once('exit', reap);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      const [code] = (await withTimeout(once(child, 'exit'), 'the child to exit', 30_000)) as [number | null];
      assert.equal(code, 0, crashReason(stderr));
      assert.match(stdout, /closed cleanly/);
    } finally {
      reap();
      process.removeListener('exit', reap);
    }
  });
});
