import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SOCKET_PROTOCOL, socketProtocols, tokenFromProtocols } from '../../proto/socket-token.ts';

void describe('a browser token as a WebSocket subprotocol', () => {
  void it('round-trips any token, including ones no subprotocol could carry raw', () => {
    for (const token of ['change-me', 'with space, comma', 'ünïcødé/+=', 'x'.repeat(300)]) {
      const offered = socketProtocols(token);
      assert.equal(offered[0], SOCKET_PROTOCOL);
      assert.match(offered[1]!, /^arbor-token\.[A-Za-z0-9_-]+$/);
      assert.equal(tokenFromProtocols(offered.join(', ')), token);
    }
  });

  void it('offers only the plain protocol without a token', () => {
    assert.deepEqual(socketProtocols(), [SOCKET_PROTOCOL]);
    assert.equal(tokenFromProtocols('arbor'), undefined);
    assert.equal(tokenFromProtocols(undefined), undefined);
  });

  void it('reads nothing from malformed or oversized offers', () => {
    assert.equal(tokenFromProtocols('arbor, arbor-token.'), undefined);
    assert.equal(tokenFromProtocols('arbor, arbor-token.a+b'), undefined);
    assert.equal(tokenFromProtocols('arbor, arbor-token.__8'), undefined, 'not UTF-8');
    assert.equal(tokenFromProtocols(`arbor, arbor-token.${'A'.repeat(5000)}`), undefined);
  });
});
