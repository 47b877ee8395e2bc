import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import prettier from 'prettier';
import { ERRORS, ERROR_CODES, ProtocolError, type ErrorCode } from '../../proto/errors.ts';
import {
  parseCoordinatorMessage,
  parseResultMetrics,
  parseResultResponse,
  parseWorkerMessage,
} from '../../proto/parse.ts';
import { renderProtocolDoc } from '../../proto/render-docs.ts';
import { PROTOCOL_VERSION } from '../../proto/version.ts';

const MAX = 64 * 1024;
const sha = 'a'.repeat(64);

const hello = {
  type: 'hello',
  protocol: PROTOCOL_VERSION,
  token: 'secret',
  name: 'laptop',
  capabilities: { backend: 'wasm', threads: 8, gpu: false, samples_per_s: 1234.5 },
};
const assign = {
  type: 'assign',
  unit_id: 'u-1',
  lineage: { origin: 'u-1', retry: 0 },
  lease_token: 'lt-1',
  shard: 3,
  base_version: 7,
  deadline_ms: 1_700_000_000_000,
  base_blob: { sha256: sha, bytes: 1024 },
  data_blob: { sha256: 'b'.repeat(64), bytes: 2048 },
  recipe: {
    local_epochs: 2,
    batch: 64,
    lr: 0.01,
    optimizer: 'adam',
    hardening: 0.5,
    leak: 0.1,
    seed: 42,
    schedule: { epochs: 4, from: 0.5, to: 1 },
  },
  subtree_depth: 2,
  leaf_width: 16,
  input_width: 784,
  output_width: 10,
  activation: 'relu',
};

function throwsCode(fn: () => unknown, code: ErrorCode, messageIncludes?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ProtocolError, `expected ProtocolError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (messageIncludes) assert.match(error.message, messageIncludes);
    return true;
  });
}

void describe('parseWorkerMessage', () => {
  void it('parses every worker message to a typed value', () => {
    const h = parseWorkerMessage(JSON.stringify(hello), MAX);
    assert.equal(h.type, 'hello');
    if (h.type === 'hello') assert.equal(h.capabilities.threads, 8);
    assert.deepEqual(parseWorkerMessage(Buffer.from('{"type":"request_work"}'), MAX), {
      type: 'request_work',
    });
    assert.deepEqual(parseWorkerMessage('{"type":"request_work","cached_shards":[3,1]}', MAX), {
      type: 'request_work',
      cached_shards: [3, 1],
    });
    const tooMany = JSON.stringify({
      type: 'request_work',
      cached_shards: Array.from({ length: 65 }, (_, i) => i),
    });
    assert.throws(() => parseWorkerMessage(tooMany, MAX), ProtocolError);
    const p = parseWorkerMessage(
      JSON.stringify({
        type: 'heartbeat',
        unit_id: 'u-1',
        lease_token: 't',
        step: 3,
        total_steps: 10,
        loss: 0.4,
      }),
      MAX,
    );
    assert.equal(p.type === 'heartbeat' && p.step, 3);
    const r = parseWorkerMessage(
      JSON.stringify({ type: 'release', unit_id: 'u-1', lease_token: 't', reason: 'shutdown' }),
      MAX,
    );
    assert.equal(r.type, 'release');
    const anonymous: Partial<typeof hello> = { ...hello };
    delete anonymous.token;
    assert.equal(parseWorkerMessage(JSON.stringify(anonymous), MAX).type, 'hello');
  });

  void it('rejects non-JSON', () =>
    throwsCode(() => parseWorkerMessage('{nope', MAX), 'BAD_MESSAGE', /not JSON/));
  void it('rejects non-objects', () =>
    throwsCode(() => parseWorkerMessage('[1]', MAX), 'BAD_MESSAGE', /object/));
  void it('rejects oversize frames before parsing', () =>
    throwsCode(() => parseWorkerMessage('x'.repeat(101), 100), 'FRAME_TOO_LARGE', /101 bytes/));
  void it('rejects unknown types, including coordinator types', () => {
    throwsCode(() => parseWorkerMessage('{"type":"bogus"}', MAX), 'BAD_MESSAGE', /unknown message type/);
    throwsCode(() => parseWorkerMessage('{"type":"welcome"}', MAX), 'BAD_MESSAGE', /unknown message type/);
    throwsCode(() => parseWorkerMessage('{"kind":"hello"}', MAX), 'BAD_MESSAGE', /\/type/);
  });
  void it('names a missing field', () => {
    const rest: Partial<typeof hello> = { ...hello };
    delete rest.name;
    throwsCode(() => parseWorkerMessage(JSON.stringify(rest), MAX), 'BAD_MESSAGE', /\/name/);
  });
  void it('names a field of the wrong type', () => {
    const bad = { ...hello, capabilities: { ...hello.capabilities, threads: 'many' } };
    throwsCode(() => parseWorkerMessage(JSON.stringify(bad), MAX), 'BAD_MESSAGE', /\/capabilities\/threads/);
    const negative = { type: 'heartbeat', unit_id: 'u', lease_token: 't', step: -1, total_steps: 1 };
    throwsCode(() => parseWorkerMessage(JSON.stringify(negative), MAX), 'BAD_MESSAGE', /\/step/);
  });
  void it('rejects unknown fields and overlong strings', () => {
    throwsCode(() => parseWorkerMessage(JSON.stringify({ ...hello, extra: 1 }), MAX), 'BAD_MESSAGE', /hello/);
    throwsCode(
      () => parseWorkerMessage(JSON.stringify({ ...hello, name: 'n'.repeat(65) }), MAX),
      'BAD_MESSAGE',
      /\/name/,
    );
  });
  void it('rejects another protocol version in hello', () => {
    throwsCode(
      () => parseWorkerMessage(JSON.stringify({ ...hello, protocol: PROTOCOL_VERSION + 1 }), MAX),
      'UNSUPPORTED_VERSION',
      new RegExp(
        `this worker speaks protocol ${PROTOCOL_VERSION + 1} and this coordinator ${PROTOCOL_VERSION}: ` +
          "run the join command the coordinator's dashboard shows, which fetches its own worker",
      ),
    );
    throwsCode(
      () => parseWorkerMessage(JSON.stringify({ ...hello, protocol: '1' }), MAX),
      'BAD_MESSAGE',
      /\/protocol/,
    );
  });
});

void describe('parseCoordinatorMessage', () => {
  void it('parses every coordinator message to a typed value', () => {
    const a = parseCoordinatorMessage(JSON.stringify(assign), MAX);
    assert.ok(a.type === 'assign');
    assert.equal(a.recipe.optimizer, 'adam');
    const w = parseCoordinatorMessage(
      JSON.stringify({
        type: 'welcome',
        worker_id: 'w-1',
        heartbeat_ms: 5000,
        limits: { max_result_bytes: 1 << 20, max_frame_bytes: 1 << 16 },
      }),
      MAX,
    );
    assert.equal(w.type, 'welcome');
    assert.equal(parseCoordinatorMessage('{"type":"no_work","retry_after_ms":1000}', MAX).type, 'no_work');
    assert.equal(
      parseCoordinatorMessage('{"type":"cancel","unit_id":"u-1","reason":"stale"}', MAX).type,
      'cancel',
    );
    const wire = new ProtocolError('LEASE_LOST').toWire();
    const e = parseCoordinatorMessage(JSON.stringify({ type: 'error', ...wire }), MAX);
    assert.ok(e.type === 'error');
    assert.equal(e.code, 'LEASE_LOST');
  });
  void it('rejects a bad sha256', () => {
    for (const bad of ['A'.repeat(64), 'a'.repeat(63), 'g'.repeat(64)]) {
      const msg = { ...assign, base_blob: { sha256: bad, bytes: 1 } };
      throwsCode(
        () => parseCoordinatorMessage(JSON.stringify(msg), MAX),
        'BAD_MESSAGE',
        /\/base_blob\/sha256/,
      );
    }
  });
  void it('rejects unknown error codes and worker types', () => {
    const msg = { type: 'error', code: 'NOPE', message: 'x', retryable: false };
    throwsCode(() => parseCoordinatorMessage(JSON.stringify(msg), MAX), 'BAD_MESSAGE', /\/code/);
    throwsCode(
      () => parseCoordinatorMessage(JSON.stringify(hello), MAX),
      'BAD_MESSAGE',
      /unknown message type/,
    );
  });
  void it('rejects oversize frames', () =>
    throwsCode(() => parseCoordinatorMessage(JSON.stringify(assign), 10), 'FRAME_TOO_LARGE'));
});

void describe('HTTP bodies', () => {
  void it('parses result metrics and responses', () => {
    assert.deepEqual(parseResultMetrics('{"train_loss":0.3,"samples":600,"seconds":1.5}'), {
      train_loss: 0.3,
      samples: 600,
      seconds: 1.5,
    });
    assert.equal(parseResultResponse('{"status":"accepted","version":8}').version, 8);
    throwsCode(() => parseResultResponse('{"status":"maybe"}'), 'BAD_MESSAGE', /\/status/);
    throwsCode(
      () => parseResultMetrics('{"train_loss":0.3,"samples":1.5,"seconds":1}'),
      'BAD_MESSAGE',
      /\/samples/,
    );
  });
});

void describe('error catalogue', () => {
  void it('has unique codes with close codes in 4000-4999, unique, and every code routable', () => {
    assert.equal(new Set(ERROR_CODES).size, ERROR_CODES.length);
    const closes: number[] = [];
    for (const code of ERROR_CODES) {
      const spec: { wsClose?: number; httpStatus?: number; description: string } = ERRORS[code];
      assert.ok(
        spec.wsClose !== undefined || spec.httpStatus !== undefined,
        `${code} has no close code or status`,
      );
      assert.ok(spec.description.length > 0);
      if (spec.wsClose !== undefined) {
        assert.ok(spec.wsClose >= 4000 && spec.wsClose <= 4999, `${code} close ${spec.wsClose}`);
        closes.push(spec.wsClose);
      }
      if (spec.httpStatus !== undefined) assert.ok(spec.httpStatus >= 400 && spec.httpStatus <= 599);
    }
    assert.equal(new Set(closes).size, closes.length);
  });
  void it('ProtocolError carries code, retryable and a wire form', () => {
    const error = new ProtocolError('RATE_LIMITED', 'slow down');
    assert.ok(error instanceof Error);
    assert.deepEqual(error.toWire(), { code: 'RATE_LIMITED', message: 'slow down', retryable: true });
    assert.equal(new ProtocolError('INTERNAL').message, ERRORS.INTERNAL.description);
  });
});

void describe('PROTOCOL.md', () => {
  void it('is up to date with the schemas (run: node --import tsx proto/render-docs.ts)', async () => {
    const path = new URL('../../PROTOCOL.md', import.meta.url);
    const options = (await prettier.resolveConfig(path)) ?? {};
    const expected = await prettier.format(renderProtocolDoc(), { ...options, parser: 'markdown' });
    assert.equal(readFileSync(path, 'utf8'), expected);
    for (const code of ERROR_CODES) assert.ok(expected.includes(`\`${code}\``), code);
  });
});
