/**
 * A volunteer who typed the wrong address is told what to check, from the real socket error:
 * once, at the first failure, while the worker goes on retrying with backoff.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import { describe, it } from 'node:test';
import { unreachableHint } from '../../worker/connection-hint.ts';
import { CoordinatorConnection } from '../../worker/connection.ts';
import { runVolunteer } from '../../worker/volunteer-loop.ts';
import type { VolunteerLog } from '../../worker/volunteer-ports.ts';

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const errorWithCode = (code: string, message: string): Error => Object.assign(new Error(message), { code });

void describe('an unreachable coordinator', () => {
  void it('names the port nobody listens on, from a real refused connection', async () => {
    const url = `ws://127.0.0.1:${await closedPort()}`;
    const error = await CoordinatorConnection.open(url).then(
      () => assert.fail('connected to a closed port'),
      (e: Error) => e,
    );
    assert.match(
      unreachableHint(url, error) ?? '',
      /^nothing listens on 127\.0\.0\.1 port \d+: is the coordinator running/,
    );
  });

  void it('tells a name that does not resolve from a host that does not answer', () => {
    assert.match(
      unreachableHint('ws://coordinatr.example:7070', errorWithCode('ENOTFOUND', 'getaddrinfo ENOTFOUND')) ??
        '',
      /the name coordinatr\.example does not resolve/,
    );
    assert.match(
      unreachableHint('wss://10.0.0.9', errorWithCode('ETIMEDOUT', 'connect ETIMEDOUT')) ?? '',
      /10\.0\.0\.9 port 443 does not answer: .* firewall/,
    );
    assert.match(unreachableHint('coordinator:7070', new Error('x')) ?? '', /looks like ws:\/\/HOST:PORT/);
    assert.equal(unreachableHint('ws://h:1', new Error('something else')), undefined);
  });

  void it('is hinted at once, then retried quietly with backoff', async () => {
    const url = `ws://127.0.0.1:${await closedPort()}`;
    const warnings: Record<string, unknown>[] = [];
    const log: VolunteerLog = {
      info: () => undefined,
      warn: (fields: unknown) => void warnings.push(fields as Record<string, unknown>),
      child: () => log,
    };
    const stop = new AbortController();
    const running = runVolunteer({
      url,
      name: 'typo',
      backend: 'wasm',
      gpu: false,
      threads: 1,
      samplesPerSecond: 1000,
      log,
      blobs: { get: () => Promise.reject(new Error('no blobs')), holds: () => false },
      reconnect: { initialMs: 1, maxMs: 2 },
      connect: (socketUrl, token) => CoordinatorConnection.open(socketUrl, token),
      signal: stop.signal,
    });
    while (warnings.length < 3) await new Promise((resolve) => setImmediate(resolve));
    stop.abort();
    assert.equal((await running).end, 'stopped');
    assert.match(String(warnings[0]!['hint']), /nothing listens on 127\.0\.0\.1/);
    assert.ok(
      warnings.slice(1).every((w) => w['hint'] === undefined),
      'said once',
    );
  });
});
