/**
 * `arbor status`: the human summary from schema-valid bodies (including the >32-shard
 * aggregation), and fetchStatus against real sockets: a good answer, a closed port
 * (STATUS_UNREACHABLE), a body that breaks the schema or is not JSON (STATUS_INVALID).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type Server, createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import {
  type ShardInfo,
  type Shards,
  ShardsSchema,
  type Status,
  StatusSchema,
  type WorkerInfo,
  type Workers,
  WorkersSchema,
} from '../../proto/dashboard.ts';
import {
  StatusError,
  coordinatorBase,
  fetchStatus,
  formatDuration,
  formatStatus,
} from '../../cli/status-command.ts';

const status: Status = {
  phase: 'training',
  paused: false,
  data: 'mnist',
  model: { depth: 6, frozen: 2, leaf: 8 },
  started_ms: 1_700_000_000_000,
  now_ms: 1_700_000_100_000,
  pretraining: null,
  progress: { trained_samples: 12_345, budget_samples: 30_000, fraction: 0.4115, eta_s: 200 },
  accuracy: { hard_test_acc: 0.91234, val_loss: 0.31244, central_hard_test_acc: 0.92 },
  workers: { connected: 3, known: 5, none_since_ms: null },
  units: { ready: 4, leased: 3, submitted: 0, accepted: 20, rejected: 1, expired: 0 },
  results: { accepted: 20, rejected: 1 },
  traffic: {
    model_bytes: 1_000_000,
    data_bytes: 500_000,
    bytes_per_sample: 81,
    dp_bytes_per_sample: 1000,
    comm_reduction: 12.345,
  },
  storage: { blobs: 1234, bytes: 56_700_000 },
  routing_imbalance: 1.2137,
  crowd: { utilization: 0.8, idle_fraction: 0.15, wasted_fraction: 0.05 },
};

const shard = (id: number, health: ShardInfo['health'], extra: Partial<ShardInfo> = {}): ShardInfo => ({
  id,
  samples: 2000,
  version: 5,
  in_flight: 1,
  mean_staleness: 0.5,
  trained_samples: 1000,
  budget_samples: 24000,
  val_loss: 0.3124,
  accepted: 5,
  rejected: 0,
  health,
  class_mix: [200, 200, 200, 200, 200, 200, 200, 200, 200, 200],
  ...extra,
});

const worker = (name: string, credit: number, extra: Partial<WorkerInfo> = {}): WorkerInfo => ({
  id: `id-${name}`,
  name,
  token_name: null,
  backend: 'wasm',
  samples_per_s: 1234.4,
  connected: true,
  units_done: 3,
  credit,
  rejections: 0,
  last_seen_ms: 1_700_000_099_000,
  standing: 'good',
  ...extra,
});

const shards: Shards = {
  frozen: 2,
  shards: [
    shard(0, 'ok'),
    shard(1, 'warn', { rejected: 1, samples: 12_000 }),
    shard(2, 'idle', { val_loss: null, in_flight: 0 }),
    shard(3, 'done'),
  ],
};
// The API pages by credit, highest first; formatStatus sorts again anyway.
const workers: Workers = {
  total: 5,
  offset: 0,
  workers: [
    worker('beta', 500),
    worker('alpha', 9_000, { samples_per_s: null, connected: false, standing: 'warned', rejections: 1 }),
  ],
};

const lines = (text: string): string[] => text.split('\n').map((line) => line.replace(/\s+/g, ' ').trim());

void describe('arbor status', () => {
  void it('has fixtures that satisfy the API schemas', () => {
    assert.ok(Value.Check(StatusSchema, status));
    assert.ok(Value.Check(ShardsSchema, shards));
    assert.ok(Value.Check(WorkersSchema, workers));
  });

  void it('prints a compact summary: progress, accuracy, workers, units, traffic, shards, top workers', () => {
    const text = formatStatus(status, shards, workers);
    assert.ok(text.endsWith('\n'));
    const out = lines(text);
    assert.ok(out.includes('job mnist · depth 6, frozen 2, leaf 8'), text);
    assert.ok(out.includes('phase training · 41.1% trained (12,345 / 30,000 samples) · ETA 3m 20s'), text);
    assert.ok(
      lines(formatStatus({ ...status, paused: true }, shards, workers)).includes(
        'phase training, paused by the operator · 41.1% trained (12,345 / 30,000 samples) · no ETA while paused',
      ),
    );
    assert.ok(out.includes('accuracy hard test 91.23% (central twin 92.00%) · val loss 0.3124'), text);
    assert.ok(out.includes('workers 3 connected / 5 known'), text);
    assert.ok(out.includes("crowd 80.0% of the volunteers' time merged · 15.0% idle · 5.0% wasted"), text);
    const alone = { ...status, workers: { connected: 0, known: 5, none_since_ms: status.now_ms - 750_000 } };
    assert.ok(
      lines(formatStatus(alone, shards, workers)).includes(
        'workers 0 connected / 5 known · no volunteers for 12m 30s',
      ),
    );
    const brief = { ...alone, workers: { ...alone.workers, none_since_ms: status.now_ms - 30_000 } };
    assert.ok(lines(formatStatus(brief, shards, workers)).includes('workers 0 connected / 5 known'));
    assert.ok(
      out.includes('units ready 4 · leased 3 · submitted 0 · accepted 20 · rejected 1 · expired 0'),
      text,
    );
    assert.ok(out.includes('results 20 accepted · 1 rejected'), text);
    assert.ok(out.includes('traffic comm reduction 12.3× · routing imbalance 1.21'), text);
    assert.ok(out.includes('storage 56.7 MB in 1,234 blobs'), text);
    assert.ok(out.includes('shards (4, frozen top 2 levels)'), text);
    assert.ok(out.includes('id samples version in flight staleness val loss health'), text);
    assert.ok(out.includes('0 2,000 5 1 0.50 0.3124 ok'), text);
    assert.ok(out.includes('1 12,000 5 1 0.50 0.3124 warn'), text);
    assert.ok(out.includes('2 2,000 5 0 0.50 n/a idle'), text);
    assert.ok(out.includes('3 2,000 5 1 0.50 0.3124 done'), text);
    assert.ok(out.includes('top workers by credit (2 of 5)'), text);
    const alpha = out.indexOf('alpha 9,000 3 1 n/a wasm warned no');
    const beta = out.indexOf('beta 500 3 0 1234 wasm good yes');
    assert.ok(alpha > 0 && beta > alpha, `highest credit first:\n${text}`);
    // Columns line up: every shard row starts its samples column at the same offset.
    const rows = text.split('\n').filter((line) => /^ {2}\d+ /.test(line));
    assert.equal(new Set(rows.map((row) => row.search(/\d[\d,]* +\d+ +\d+ +(n\/a|\d)/))).size, 1, text);
  });

  void it('says what is unknown before training has numbers, and when it is finished', () => {
    const early: Status = {
      ...status,
      phase: 'pretraining',
      progress: { trained_samples: 0, budget_samples: 0, fraction: 0, eta_s: null },
      accuracy: { hard_test_acc: null, val_loss: null, central_hard_test_acc: null },
      traffic: { ...status.traffic, comm_reduction: null },
      routing_imbalance: null,
    };
    const out = lines(formatStatus(early, { frozen: 2, shards: [] }, { total: 0, offset: 0, workers: [] }));
    assert.ok(out.includes('phase pretraining · 0.0% trained (0 / 0 samples) · ETA unknown'));
    assert.ok(out.includes('accuracy hard test n/a · val loss n/a'));
    assert.ok(out.includes('traffic comm reduction n/a · routing imbalance n/a'));
    assert.ok(out.includes('shards (0, frozen top 2 levels): none yet'));
    assert.ok(out.includes('workers: none has connected yet'));
    const done = lines(formatStatus({ ...status, phase: 'done' }, shards, workers));
    assert.ok(done.some((line) => line.startsWith('phase done ·') && line.endsWith('· finished')));
  });

  void it('aggregates more than 32 shards to counts by health', () => {
    const many: Shards = {
      frozen: 6,
      shards: Array.from({ length: 64 }, (_, i) =>
        shard(i, i < 40 ? 'ok' : i < 60 ? 'done' : i < 63 ? 'warn' : 'bad', { in_flight: i < 10 ? 1 : 0 }),
      ),
    };
    assert.ok(Value.Check(ShardsSchema, many));
    const text = formatStatus(status, many, workers);
    assert.ok(
      lines(text).includes(
        'shards (64, frozen top 6 levels): bad 1 · warn 3 · ok 40 · idle 0 · done 20 · 10 in flight',
      ),
      text,
    );
    assert.doesNotMatch(text, /val loss health/, 'no per-shard table');
    // 32 shards still get one line each.
    const thirtyTwo = formatStatus(status, { frozen: 5, shards: many.shards.slice(0, 32) }, workers);
    assert.equal(thirtyTwo.split('\n').filter((line) => /^ {2}\d+ /.test(line)).length, 32);
  });

  void it('shows at most the top 10 workers', () => {
    const twelve: Workers = {
      total: 40,
      offset: 0,
      workers: Array.from({ length: 12 }, (_, i) => worker(`w${i}`, 1000 - i)),
    };
    const out = lines(formatStatus(status, shards, twelve));
    assert.ok(out.includes('top workers by credit (10 of 40)'));
    assert.ok(out.some((line) => line.startsWith('w9 ')));
    assert.ok(!out.some((line) => line.startsWith('w10 ')));
  });

  void it('keeps terminal escapes and very long names in worker names off the screen', () => {
    const sneaky: Workers = {
      total: 1,
      offset: 0,
      workers: [worker('\u001b[2Jevil\u0007 name that goes on and on and on', 10, { backend: 'wasm\r\n' })],
    };
    const text = formatStatus(status, shards, sneaky);
    assert.doesNotMatch(text, /[\u0000-\u0008\u000b-\u001f\u007f]/);
    assert.ok(
      lines(text).some((line) => line.startsWith('?[2Jevil? name that goe… 10 ')),
      text,
    );
  });

  void it('formats durations and coordinator addresses', () => {
    assert.equal(formatDuration(45), '45s');
    assert.equal(formatDuration(200), '3m 20s');
    assert.equal(formatDuration(3 * 3600 + 20 * 60 + 7), '3h 20m');
    assert.equal(formatDuration(2 * 86_400 + 3 * 3600), '2d 03h');
    assert.equal(coordinatorBase('ws://127.0.0.1:7070'), 'http://127.0.0.1:7070');
    assert.equal(coordinatorBase('wss://arbor.example.org/v1/ws'), 'https://arbor.example.org');
    assert.equal(coordinatorBase('http://10.0.0.2:7070/'), 'http://10.0.0.2:7070');
    assert.throws(() => coordinatorBase('ftp://x'), /--url must be/);
    assert.throws(() => coordinatorBase('not a url'), /--url must be/);
  });
});

// ---------------------------------------------------------------- over sockets

const servers: Server[] = [];
after(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  }
});

/** A local HTTP server answering each path with the given JSON (or raw text). */
async function serve(routes: Record<string, unknown>): Promise<string> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0]!;
    if (!(path in routes)) {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"code":"NOT_FOUND"}');
      return;
    }
    const body = routes[path];
    response
      .writeHead(200, { 'content-type': 'application/json' })
      .end(typeof body === 'string' ? body : JSON.stringify(body));
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function rejectsWith(promise: Promise<unknown>, code: string, message: RegExp): Promise<StatusError> {
  const error = await promise.then(
    () => assert.fail('expected fetchStatus to fail'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof StatusError, `a StatusError, got ${String(error)}`);
  assert.equal(error.code, code);
  assert.match(error.message, message);
  return error;
}

void describe('fetchStatus', () => {
  void it('returns the three validated bodies; ws:// works as the address', async () => {
    const base = await serve({ '/v1/status': status, '/v1/shards': shards, '/v1/workers': workers });
    const report = await fetchStatus(base.replace('http', 'ws'));
    assert.deepEqual(report, { status, shards, workers });
  });

  void it('fails with STATUS_UNREACHABLE on a closed port', async () => {
    const probe = createNetServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as AddressInfo).port;
    probe.close();
    await once(probe, 'close');
    const url = `http://127.0.0.1:${port}`;
    await rejectsWith(fetchStatus(url), 'STATUS_UNREACHABLE', new RegExp(`${url}/v1/.*ECONNREFUSED`));
  });

  void it('fails with STATUS_UNREACHABLE when the coordinator does not answer in time', async () => {
    const server = createServer(() => undefined); // never answers
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await rejectsWith(fetchStatus(url, 200), 'STATUS_UNREACHABLE', /no answer within 0\.2 s/);
  });

  void it('fails with STATUS_INVALID naming the URL and the first bad field', async () => {
    const bad = { ...status, progress: { ...status.progress, fraction: 'most of it' } };
    const base = await serve({ '/v1/status': bad, '/v1/shards': shards, '/v1/workers': workers });
    const error = await rejectsWith(fetchStatus(base), 'STATUS_INVALID', /\/progress\/fraction/);
    assert.ok(error.message.includes(`${base}/v1/status`), error.message);
    assert.match(error.message, /"most of it"/);

    const missing = { ...workers, workers: [{ ...workers.workers[0], credit: undefined }] };
    const base2 = await serve({ '/v1/status': status, '/v1/shards': shards, '/v1/workers': missing });
    await rejectsWith(fetchStatus(base2), 'STATUS_INVALID', /\/v1\/workers\?limit=10 .*\/workers\/0\/credit/);
  });

  void it('fails with STATUS_INVALID on a body that is not JSON or an HTTP error', async () => {
    const base = await serve({
      '/v1/status': '<html>hello</html>',
      '/v1/shards': shards,
      '/v1/workers': workers,
    });
    await rejectsWith(fetchStatus(base), 'STATUS_INVALID', /\/v1\/status did not answer JSON/);
    const empty = await serve({});
    await rejectsWith(fetchStatus(empty), 'STATUS_INVALID', /answered HTTP 404/);
  });
});
