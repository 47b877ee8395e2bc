/** The control socket's upgrade with a browser's subprotocol token, over a real listening coordinator. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { socketProtocols } from '../../proto/socket-token.ts';
import { type SmallCoordinator, startSmallCoordinator } from '../helpers/small-job.ts';

function upgrade(url: string, protocols: string[]): Promise<{ protocol: string } | { status: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    ws.once('open', () => {
      resolve({ protocol: ws.protocol });
      ws.close(1000);
    });
    ws.once('unexpected-response', (_request, response) => {
      resolve({ status: response.statusCode ?? 0 });
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

void describe('a browser token on the socket upgrade', () => {
  let small: SmallCoordinator;
  before(async () => (small = await startSmallCoordinator({ token: 'shared secret' })));
  after(async () => small?.close());

  void it('admits the right token and answers with the plain protocol, never the token', async () => {
    assert.deepEqual(await upgrade(small.wsUrl, socketProtocols('shared secret')), { protocol: 'arbor' });
  });

  void it('refuses a wrong token, a missing one and a malformed one with 401', async () => {
    assert.deepEqual(await upgrade(small.wsUrl, socketProtocols('guess')), { status: 401 });
    assert.deepEqual(await upgrade(small.wsUrl, socketProtocols()), { status: 401 });
    assert.deepEqual(await upgrade(small.wsUrl, ['arbor', 'arbor-token.%%%']), { status: 401 });
  });
});
