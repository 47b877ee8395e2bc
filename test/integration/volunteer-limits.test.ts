/**
 * What one stranger with valid volunteer tokens can no longer do to everyone else, over real
 * sockets on 127.0.0.1: hold every upload slot with uploads that trickle in, flood the control
 * socket with frames, or take every dashboard event stream from the operator.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type ClientRequest, type IncomingMessage, request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { issueVolunteerToken } from '../../coordinator/core/identity.ts';
import type { CoordinatorMessage } from '../../proto/messages.ts';
import { parseCoordinatorMessage } from '../../proto/parse.ts';
import { HEADERS, ROUTES } from '../../proto/routes.ts';
import { type SmallCoordinator, startSmallCoordinator } from '../helpers/small-job.ts';
import { helloFrame, holdLease } from '../helpers/volunteer.ts';

const sockets: WebSocket[] = [];
after(() => {
  for (const ws of sockets) ws.terminate();
});

const metrics = JSON.stringify({ train_loss: 0, samples: 1, seconds: 1 });

interface Lease {
  readonly token: string;
  readonly workerId: string;
  readonly unitId: string;
  readonly leaseToken: string;
}

async function leaseFor(small: SmallCoordinator, token: string, name: string): Promise<Lease> {
  const { workerId, assign } = await holdLease(small.wsUrl, token, name, sockets);
  return { token, workerId, unitId: assign.unit_id, leaseToken: assign.lease_token };
}

/**
 * PUTs a result announced at `length` bytes and sends only `sent` of them, keeping the request
 * open; `written` settles once they are on their way.
 */
function startUpload(
  small: SmallCoordinator,
  lease: Lease,
  length: number,
  sent: number,
): ClientRequest & { written: Promise<void> } {
  const url = new URL(small.coordinator.url);
  const req = request({
    host: url.hostname,
    port: url.port,
    path: ROUTES.unitResult.path(lease.unitId),
    method: 'PUT',
    headers: {
      authorization: `Bearer ${lease.token}`,
      'content-type': 'application/octet-stream',
      'content-length': String(length),
      [HEADERS.worker]: lease.workerId,
      [HEADERS.lease]: lease.leaseToken,
      [HEADERS.metrics]: metrics,
    },
  });
  req.on('error', () => undefined);
  const written = new Promise<void>((resolve) => {
    if (sent < length) req.write(Buffer.alloc(sent), () => resolve());
    else req.end(Buffer.alloc(length), () => resolve());
  });
  return Object.assign(req, { written });
}

/** `promise`, or a failure naming `what` when it has not settled within `ms`. */
async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The coordinator's answer to an upload, or undefined when it closed the connection without one. */
async function answerOf(req: ClientRequest): Promise<{ status: number; code: unknown } | undefined> {
  const response = await Promise.race([
    once(req, 'response').then(([r]) => r as IncomingMessage),
    once(req, 'close').then(() => undefined),
  ]);
  if (response === undefined) return undefined;
  let text = '';
  for await (const chunk of response) text += String(chunk);
  return { status: response.statusCode ?? 0, code: (JSON.parse(text) as { code: unknown }).code };
}

void describe('upload slots', { timeout: 60_000 }, () => {
  let small: SmallCoordinator;
  before(async () => {
    small = await startSmallCoordinator({ limits: { maxUploadsPerIp: 2 } });
  });
  after(() => small.close());

  void it("reads one upload per volunteer at a time, while another volunteer's upload goes through", async () => {
    const mallory = issueVolunteerToken(small.coordinator.store, 'mallory', 0).token;
    const alice = issueVolunteerToken(small.coordinator.store, 'alice', 0).token;
    const [first, second] = [await leaseFor(small, mallory, 'm'), await leaseFor(small, mallory, 'm')];
    assert.equal(second.workerId, `${first.workerId}-2`, "one volunteer's second machine");
    const bytes = small.coordinator.job.resultBytes;
    const trickling = startUpload(small, first, bytes, 1);
    try {
      await trickling.written;
      const refused = await answerOf(startUpload(small, second, bytes, bytes));
      assert.deepEqual(refused, { status: 429, code: 'RATE_LIMITED' }, 'the same volunteer waits its turn');
      const honest = await answerOf(startUpload(small, await leaseFor(small, alice, 'a'), bytes, bytes));
      assert.equal(honest?.status, 422, 'judged (an all-zero body is not a delta), not told to wait');
    } finally {
      trickling.destroy();
    }
  });

  void it('holds at most two uploads from one address, whichever volunteers they are for', async () => {
    const bytes = small.coordinator.job.resultBytes;
    const held: ReturnType<typeof startUpload>[] = [];
    try {
      for (const name of ['one', 'two']) {
        const token = issueVolunteerToken(small.coordinator.store, name, 0).token;
        held.push(startUpload(small, await leaseFor(small, token, name), bytes, 1));
      }
      await Promise.all(held.map((req) => req.written));
      const third = issueVolunteerToken(small.coordinator.store, 'three', 0).token;
      const refused = await answerOf(startUpload(small, await leaseFor(small, third, 'three'), bytes, bytes));
      assert.deepEqual(refused, { status: 429, code: 'RATE_LIMITED' });
    } finally {
      for (const req of held) req.destroy();
    }
  });
});

void describe('an upload slower than the minimum rate', { timeout: 60_000 }, () => {
  let small: SmallCoordinator;
  before(async () => {
    // Whatever its size, an upload here must arrive within 300 ms.
    small = await startSmallCoordinator({
      limits: { uploadFloorMs: 300, minUploadBytesPerSecond: 1e12 },
    });
  });
  after(() => small.close());

  void it('is answered RATE_LIMITED and closed, and its slot goes to the next upload', async () => {
    const token = issueVolunteerToken(small.coordinator.store, 'trickler', 0).token;
    const lease = await leaseFor(small, token, 'trickler');
    const bytes = small.coordinator.job.resultBytes;
    const trickling = startUpload(small, lease, bytes, 1);
    const answer = await within(5_000, answerOf(trickling), 'no answer to the trickling upload');
    assert.deepEqual(answer, { status: 429, code: 'RATE_LIMITED' });
    await once(trickling, 'close');
    const retried = await answerOf(startUpload(small, lease, bytes, bytes));
    assert.equal(retried?.status, 422, 'the same volunteer is read again at once, and judged');
  });
});

void describe('a flood of control frames', { timeout: 60_000 }, () => {
  let small: SmallCoordinator;
  before(async () => {
    // Heartbeats every 5 s and retries every 2 s: the sustained rate is 4 x 0.7 = 2.8 frames a second.
    small = await startSmallCoordinator({
      settings: { heartbeat_ms: 5_000, retry_after_ms: 2_000 },
      limits: { maxFramesPerSecond: 1, frameBurst: 20 },
    });
  });
  after(() => small.close());

  void it('closes the socket with RATE_LIMITED, leaving the frames over its budget unhandled', async () => {
    const token = issueVolunteerToken(small.coordinator.store, 'flood', 0).token;
    const ws = new WebSocket(small.wsUrl, { headers: { authorization: `Bearer ${token}` } });
    sockets.push(ws);
    const answers: CoordinatorMessage[] = [];
    ws.on('message', (raw: Buffer) => answers.push(parseCoordinatorMessage(raw, 1 << 20)));
    await once(ws, 'open');
    const closed = once(ws, 'close');
    ws.send(JSON.stringify(helloFrame('flood')));
    const frame = JSON.stringify({ type: 'request_work' });
    for (let i = 0; i < 2_000; i++) ws.send(frame);
    const status = await fetch(`${small.coordinator.url}/v1/status`);
    assert.equal(status.status, 200, 'the coordinator still answers');
    const [code] = (await within(10_000, closed, 'the flooding socket was not closed')) as [number];
    assert.equal(code, 4029);
    const error = answers.at(-1);
    assert.equal(error?.type === 'error' && error.code, 'RATE_LIMITED', JSON.stringify(error));
    assert.ok(answers.length <= 40, `${answers.length} frames answered of 2,001`);
  });
});

void describe('dashboard event streams', { timeout: 60_000 }, () => {
  const ADMIN = 'operator-secret';
  let small: SmallCoordinator;
  before(async () => {
    small = await startSmallCoordinator({
      access: { adminToken: ADMIN },
      limits: { maxEventStreams: 2, maxEventStreamsPerToken: 1, adminEventStreams: 1 },
    });
  });
  after(() => small.close());

  void it('caps the streams of one token and in all, and still lets the operator open one', async () => {
    const open: AbortController[] = [];
    const stream = async (token?: string): Promise<{ status: number; code?: unknown }> => {
      const controller = new AbortController();
      const query = token === undefined ? '' : `?token=${token}`;
      const response = await fetch(`${small.coordinator.url}/v1/events${query}`, {
        signal: controller.signal,
      });
      if (response.status === 200) {
        open.push(controller);
        return { status: 200 };
      }
      return { status: response.status, code: ((await response.json()) as { code: unknown }).code };
    };
    try {
      assert.deepEqual(await stream('some-token'), { status: 200 });
      assert.deepEqual(await stream('some-token'), { status: 429, code: 'RATE_LIMITED' }, 'one per token');
      assert.deepEqual(await stream(), { status: 200 });
      assert.deepEqual(await stream(), { status: 429, code: 'RATE_LIMITED' }, 'the cap is full');
      assert.deepEqual(await stream(ADMIN), { status: 200 }, 'the operator gets in all the same');
      assert.deepEqual(await stream(ADMIN), { status: 429, code: 'RATE_LIMITED' }, 'within its own room');
    } finally {
      for (const controller of open) controller.abort();
    }
  });
});
