/**
 * The coordinator's limits over real sockets: an upload is judged by its headers before a
 * byte of its body is read, bodies are bounded by what a result can be, uploads read at once
 * are capped, and the token is checked on the matched route whatever the URL's spelling.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type IncomingMessage, request } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import type { Assign } from '../../proto/messages.ts';
import { HEADERS, ROUTES } from '../../proto/routes.ts';
import { issueVolunteerToken } from '../../coordinator/core/identity.ts';
import { type SmallCoordinator, startSmallCoordinator } from '../helpers/small-job.ts';
import { helloFrame, holdLease as holdLeaseAs, joinAs } from '../helpers/volunteer.ts';

const TOKEN = 'limits-token';
let small: SmallCoordinator;
const sockets: WebSocket[] = [];

before(async () => {
  small = await startSmallCoordinator({
    token: TOKEN,
    settings: { shard_epochs: 4 },
    limits: {
      maxConcurrentUploads: 1,
      helloTimeoutMs: 300,
      maxConnectionsPerIp: 6,
      maxEventStreams: 2,
      requestTimeoutMs: 1_000,
    },
  });
});
after(async () => {
  for (const ws of sockets) ws.terminate();
  await small?.close();
});

const holdLease = (name: string) => holdLeaseAs(small.wsUrl, TOKEN, name, sockets);

/**
 * Sends the headers of a PUT announcing a `length`-byte body and never sends the body:
 * resolves with the coordinator's answer, which must come without it.
 */
async function answerWithoutBody(
  path: string,
  headers: Record<string, string>,
  length: number,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const url = new URL(small.coordinator.url);
  const req = request({
    host: url.hostname,
    port: url.port,
    path,
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(length), ...headers },
  });
  req.on('error', () => undefined);
  req.flushHeaders();
  let timer: NodeJS.Timeout | undefined;
  const unanswered = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('no answer without the body')), 10_000);
  });
  try {
    const [response] = (await Promise.race([once(req, 'response'), unanswered])) as [IncomingMessage];
    let text = '';
    for await (const chunk of response) text += String(chunk);
    return { status: response.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> };
  } finally {
    clearTimeout(timer);
    req.destroy();
  }
}

const auth = { authorization: `Bearer ${TOKEN}` };
const metrics = JSON.stringify({ train_loss: 0, samples: 1, seconds: 1 });

void describe('limits', { timeout: 60_000 }, () => {
  void it('refuses an upload whose sender holds no lease before reading its body', async () => {
    const { workerId, assign } = await holdLease('no-lease');
    const answer = await answerWithoutBody(
      ROUTES.unitResult.path(assign.unit_id),
      { ...auth, [HEADERS.worker]: workerId, [HEADERS.lease]: 'forged', [HEADERS.metrics]: metrics },
      small.coordinator.job.resultBytes,
    );
    assert.equal(answer.status, 409);
    assert.equal(answer.body['code'], 'LEASE_LOST');
  });

  void it('refuses a body larger than a result of this job can be, before reading it', async () => {
    const { workerId, assign } = await holdLease('too-big');
    const answer = await answerWithoutBody(
      ROUTES.unitResult.path(assign.unit_id),
      {
        ...auth,
        [HEADERS.worker]: workerId,
        [HEADERS.lease]: assign.lease_token,
        [HEADERS.metrics]: metrics,
      },
      small.coordinator.job.resultBytes + 1024 * 1024,
    );
    assert.equal(answer.status, 413);
    assert.equal(answer.body['code'], 'FRAME_TOO_LARGE');
  });

  void it('reads one upload at a time here; the next is told to retry (RATE_LIMITED, retryable)', async () => {
    const first = await holdLease('slow');
    const second = await holdLease('next');
    const headers = (l: { workerId: string; assign: Assign }) => ({
      ...auth,
      [HEADERS.worker]: l.workerId,
      [HEADERS.lease]: l.assign.lease_token,
      [HEADERS.metrics]: metrics,
    });
    const url = new URL(small.coordinator.url);
    const slow = request({
      host: url.hostname,
      port: url.port,
      path: ROUTES.unitResult.path(first.assign.unit_id),
      method: 'PUT',
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(small.coordinator.job.resultBytes),
        ...headers(first),
      },
    });
    slow.on('error', () => undefined);
    slow.write(Buffer.alloc(16)); // the coordinator is now reading this body
    try {
      const answer = await answerWithoutBody(
        ROUTES.unitResult.path(second.assign.unit_id),
        headers(second),
        small.coordinator.job.resultBytes,
      );
      assert.equal(answer.status, 429);
      assert.equal(answer.body['code'], 'RATE_LIMITED');
      assert.equal(answer.body['retryable'], true);
    } finally {
      slow.destroy();
    }
  });

  void it('answers a body that trickles in slower than the request timeout with 408 and closes', async () => {
    const { workerId, assign } = await holdLease('trickle');
    const url = new URL(small.coordinator.url);
    const req = request({
      host: url.hostname,
      port: url.port,
      path: ROUTES.unitResult.path(assign.unit_id),
      method: 'PUT',
      headers: {
        ...auth,
        'content-type': 'application/octet-stream',
        'content-length': String(small.coordinator.job.resultBytes),
        [HEADERS.worker]: workerId,
        [HEADERS.lease]: assign.lease_token,
        [HEADERS.metrics]: metrics,
      },
    });
    req.on('error', () => undefined);
    req.write(Buffer.alloc(1)); // and nothing more
    const response = await Promise.race([
      once(req, 'response').then(([r]) => r as IncomingMessage),
      once(req, 'close').then(() => undefined),
    ]);
    assert.ok(response, 'closed without an answer');
    response.resume();
    assert.equal(response.statusCode, 408);
    req.destroy();
  });

  void it('checks the token on the matched route, however the path is spelled', async () => {
    const blob = small.coordinator.store.listShards()[0]!.dataBlob;
    for (const path of [
      `/v1/%62lobs/${blob}`,
      `/v1/blobs/%${blob.charCodeAt(0).toString(16)}${blob.slice(1)}`,
    ]) {
      const response = await fetch(`${small.coordinator.url}${path}`);
      assert.ok([401, 404].includes(response.status), `${path}: ${response.status}`);
      assert.notEqual(response.headers.get('content-type'), 'application/octet-stream');
    }
    const upload = await fetch(`${small.coordinator.url}/v1/%75nits/r0000-s0000/result`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream' },
      body: new Uint8Array(8),
    });
    assert.ok([401, 404].includes(upload.status), `upload: ${upload.status}`);
  });

  void it('closes a socket that does not say hello in time', async () => {
    const ws = new WebSocket(small.wsUrl, { headers: auth });
    sockets.push(ws);
    await once(ws, 'open');
    const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
    assert.equal(code, 4000);
    assert.equal(reason.toString(), 'BAD_MESSAGE');
  });

  void it('closes a socket that said hello and then nothing, though it answers pings', async () => {
    const quiet = await startSmallCoordinator({
      token: TOKEN,
      limits: { pingIntervalMs: 100, idleTimeoutMs: 300 },
    });
    try {
      const volunteer = await joinAs(quiet.wsUrl, TOKEN, 'quiet', sockets);
      const [code] = (await once(volunteer.ws, 'close')) as [number];
      assert.equal(code, 4000);
      const error = await volunteer.next();
      assert.match(error.type === 'error' ? error.message : '', /idle socket closed/);
    } finally {
      await quiet.close();
    }
  });

  void it('caps the sockets of one volunteer token, and frees the place when one closes', async () => {
    const capped = await startSmallCoordinator({ limits: { maxSocketsPerToken: 2 } });
    try {
      const { token } = issueVolunteerToken(capped.coordinator.store, 'many-machines', 0);
      const [one] = [
        await joinAs(capped.wsUrl, token, 'one', sockets),
        await joinAs(capped.wsUrl, token, 'two', sockets),
      ];
      const third = new WebSocket(capped.wsUrl, { headers: { authorization: `Bearer ${token}` } });
      third.on('error', () => undefined);
      const [, response] = (await once(third, 'unexpected-response')) as [unknown, IncomingMessage];
      assert.equal(response.statusCode, 429);
      one!.ws.close();
      await once(one!.ws, 'close');
      await joinAs(capped.wsUrl, token, 'three', sockets);
    } finally {
      await capped.close();
    }
  });

  void it('caps sockets from one address, and frees the place when one closes', async () => {
    const open: WebSocket[] = [];
    let refused: number | undefined;
    for (let i = 0; i < 8 && refused === undefined; i++) {
      const ws = new WebSocket(small.wsUrl, { headers: auth });
      sockets.push(ws);
      ws.on('error', () => undefined);
      const outcome = await Promise.race([
        once(ws, 'open').then(() => 'open' as const),
        once(ws, 'unexpected-response').then(([, response]) => (response as IncomingMessage).statusCode),
      ]);
      if (outcome === 'open') {
        // Said at once, so that the hello deadline frees no place during the count.
        ws.send(JSON.stringify(helloFrame(`counted-${i}`)));
        open.push(ws);
      } else refused = outcome;
    }
    assert.equal(refused, 429, 'at most 6 sockets from 127.0.0.1');
    const closed = once(open[0]!, 'close');
    open[0]!.close();
    await closed;
    for (let attempt = 0; ; attempt++) {
      const ws = new WebSocket(small.wsUrl, { headers: auth });
      sockets.push(ws);
      ws.on('error', () => undefined);
      const ok = await Promise.race([
        once(ws, 'open').then(() => true),
        once(ws, 'unexpected-response').then(() => false),
      ]);
      if (ok) break;
      assert.ok(attempt < 20, 'a place is free again once a socket has closed');
      await once(ws, 'close');
    }
  });

  void it('caps the dashboard event streams', async () => {
    const controllers = [new AbortController(), new AbortController()];
    try {
      for (const controller of controllers) {
        const response = await fetch(`${small.coordinator.url}/v1/events`, { signal: controller.signal });
        assert.equal(response.status, 200);
      }
      const third = await fetch(`${small.coordinator.url}/v1/events`);
      assert.equal(third.status, 429);
      assert.equal(((await third.json()) as { code: string }).code, 'RATE_LIMITED');
    } finally {
      for (const controller of controllers) controller.abort();
    }
  });

  void it('answers an event-stream request that carries a (broken) body, instead of dropping it', async () => {
    const { port } = new URL(small.coordinator.url);
    const socket = connect(Number(port), '127.0.0.1');
    await once(socket, 'connect');
    socket.write(
      'GET /v1/events HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\nzz\r\n',
    );
    let reply = '';
    socket.on('data', (chunk: Buffer) => (reply += chunk.toString('latin1')));
    await once(socket, 'close');
    assert.match(reply, /^HTTP\/1\.1 400 /, reply);
    assert.match(reply, /"code":"BAD_MESSAGE"/);
  });
});

void describe('reconnect storms', { timeout: 60_000 }, () => {
  void it('refuses a fourth new socket from one address within a minute when three are allowed', async () => {
    const storm = await startSmallCoordinator({ limits: { maxConnectsPerIpPerMinute: 3 } });
    try {
      const outcomes: (number | 'open')[] = [];
      for (let i = 0; i < 4; i++) {
        const ws = new WebSocket(storm.wsUrl);
        sockets.push(ws);
        ws.on('error', () => undefined);
        outcomes.push(
          await Promise.race([
            once(ws, 'open').then(() => 'open' as const),
            once(ws, 'unexpected-response').then(([, r]) => (r as IncomingMessage).statusCode ?? 0),
          ]),
        );
        ws.close();
      }
      assert.deepEqual(outcomes, ['open', 'open', 'open', 429]);
    } finally {
      for (const ws of sockets) ws.terminate();
      await storm.close();
    }
  });

  void it('refuses upgrades from an address that failed its token too often, even with the right one', async () => {
    const guarded = await startSmallCoordinator({
      token: TOKEN,
      limits: { maxAuthFailuresPerIpPerMinute: 3 },
    });
    const upgrade = async (localAddress: string, token: string): Promise<number | 'open'> => {
      const ws = new WebSocket(guarded.wsUrl, {
        localAddress,
        headers: { authorization: `Bearer ${token}` },
      });
      sockets.push(ws);
      ws.on('error', () => undefined);
      const outcome = await Promise.race([
        once(ws, 'open').then(() => 'open' as const),
        once(ws, 'unexpected-response').then(([, r]) => (r as IncomingMessage).statusCode ?? 0),
      ]);
      ws.close();
      return outcome;
    };
    try {
      const outcomes = [];
      for (let i = 0; i < 4; i++) outcomes.push(await upgrade('127.0.0.5', 'guess'));
      outcomes.push(await upgrade('127.0.0.5', TOKEN), await upgrade('127.0.0.6', TOKEN));
      assert.deepEqual(outcomes, [401, 401, 401, 401, 429, 'open']);
    } finally {
      for (const ws of sockets) ws.terminate();
      await guarded.close();
    }
  });
});
