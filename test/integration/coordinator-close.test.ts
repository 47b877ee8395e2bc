/**
 * Stopping a coordinator (SIGTERM: `docker stop`, `docker compose restart`) returns at once
 * even when a worker's keep-alive connection was busy as closing began; such a connection
 * used to hold the server open for fastify's 72 s keep-alive timeout, past Docker's grace.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { startSmallCoordinator } from '../helpers/small-job.ts';

void describe('closing the coordinator', () => {
  void it('does not wait for a keep-alive connection that goes idle after closing began', async () => {
    const small = await startSmallCoordinator();
    const { port } = new URL(small.coordinator.url);
    const client = connect(Number(port), '127.0.0.1');
    await once(client, 'connect');
    let answered = '';
    client.on('data', (chunk: Buffer) => (answered += chunk.toString()));
    client.on('error', () => undefined);
    // Half the body sent: the connection is busy with a request when close() begins.
    const body = '{"name":"late"}';
    client.write(
      `POST /v1/enrol HTTP/1.1\r\nHost: coordinator\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${body.length}\r\n\r\n${body.slice(0, 8)}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = Date.now();
    const closed = small.close();
    client.write(body.slice(8));
    await closed;
    const seconds = (Date.now() - started) / 1000;
    client.destroy();
    assert.match(answered, /^HTTP\/1\.1 \d{3}/, 'the request under way was answered');
    assert.ok(seconds < 5, `close took ${seconds} s`);
  });
});
