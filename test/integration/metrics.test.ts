/**
 * GET /metrics against a real coordinator (real SQLite file, small MNIST job): the scrape
 * is Prometheus text, the job gauges and counters match the store, the histograms count
 * what they are fed, process metrics are there, and two registrations do not clash.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import pino from 'pino';
import { type RunningCoordinator, startCoordinator } from '../../coordinator/coordinator.ts';
import { parseJobConfig } from '../../coordinator/job/config.ts';
import { type CoordinatorMetrics, registerMetrics, rejectionCategory } from '../../coordinator/metrics.ts';
import { UNIT_STATES } from '../../coordinator/store/store.ts';
import { selectBackend } from '../../shared/backend.ts';

const dir = mkdtempSync(join(tmpdir(), 'arbor-metrics-'));
let coordinator: RunningCoordinator;
const apps: FastifyInstance[] = [];

before(async () => {
  await selectBackend('wasm');
  coordinator = await startCoordinator({
    config: parseJobConfig({
      data: 'mnist',
      depth: 3,
      frozen: 2,
      leaf: 4,
      pretrain: { epochs: 1, max_samples: 1000 },
      shard_epochs: 1,
      local_epochs: 1,
    }),
    dbPath: join(dir, 'arbor.db'),
    host: '127.0.0.1',
    port: 0,
    log: pino({ level: 'silent' }),
    finalModelPath: join(dir, 'final.safetensors'),
  });
  const until = Date.now() + 25_000;
  while (coordinator.job.phase !== 'training') {
    if (Date.now() > until) throw new Error(`job still ${coordinator.job.phase} after 25 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
});

after(async () => {
  for (const app of apps) await app.close();
  await coordinator?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function metricsApp(): Promise<{ app: FastifyInstance; metrics: CoordinatorMetrics }> {
  const app = Fastify({ logger: false });
  apps.push(app);
  const metrics = registerMetrics(app, { coordinator: () => coordinator });
  await app.ready();
  return { app, metrics };
}

const SAMPLE =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (\S+)$/;

/** Prometheus text format -> `name{labels}` -> value; throws on any malformed line. */
function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      assert.match(line, /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* /, `comment line: ${line}`);
      continue;
    }
    const match = SAMPLE.exec(line);
    assert.ok(match, `not a Prometheus sample line: ${JSON.stringify(line)}`);
    const raw = match[3]!;
    const value = /^nan$/i.test(raw)
      ? NaN
      : raw === '+Inf'
        ? Infinity
        : raw === '-Inf'
          ? -Infinity
          : Number(raw);
    assert.ok(!Number.isNaN(value) || /^nan$/i.test(raw), `bad value in ${line}`);
    samples.set(`${match[1]}${match[2] ?? ''}`, value);
  }
  return samples;
}

async function scrape(app: FastifyInstance): Promise<Map<string, number>> {
  const response = await app.inject({ method: 'GET', url: '/metrics' });
  assert.equal(response.statusCode, 200);
  assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return parseExposition(response.body);
}

void describe('coordinator metrics', { timeout: 60_000 }, () => {
  void it('reads rejection reasons as short categories of bounded cardinality', () => {
    assert.equal(rejectionCategory('stale: 5 versions behind (limit 4)'), 'stale');
    assert.equal(
      rejectionCategory('validation loss 0.5123 is worse than 0.4000 beyond the tolerance 0.25'),
      'validation loss # is worse than # beyond',
    );
    assert.equal(rejectionCategory('norm 1.234e+5 exceeds the bound 1000'), 'norm # exceeds the bound #');
    assert.equal(rejectionCategory('result for r0003-s0001: bad header'), 'result for r#-s#');
    assert.equal(rejectionCategory(null), 'other');
  });

  void it('exposes the job from the store, the histograms and the process metrics', async () => {
    const { store } = coordinator;
    const { app, metrics } = await metricsApp();
    const before = await scrape(app);
    assert.ok(
      Number.isNaN(before.get('arbor_hard_test_accuracy')),
      'no accuracy before the first evaluation',
    );
    assert.equal(before.get('arbor_results_total{status="rejected"}'), 0);

    // Give the store something to report: two rejections, one accepted result, an
    // evaluation and traffic (no worker is connected, so nothing else moves).
    const now = Date.now();
    store.upsertWorker({ id: 'w1', name: 'w1', tokenHash: '', backend: 'cpu', lastSeenMs: now });
    const lease = () => {
      const unit = store.leaseUnit('w1', now, 60_000, `t-${Math.random()}`);
      assert.ok(unit, 'a ready unit to lease');
      return unit;
    };
    for (const reason of ['stale: 5 versions behind (limit 4)', 'stale: 6 versions behind (limit 4)'])
      assert.ok(store.rejectResult({ unitId: lease().id, workerId: 'w1', reason, now }));
    const good = lease();
    store.acceptResult({
      unitId: good.id,
      workerId: 'w1',
      shard: good.shard,
      baseVersion: good.baseVersion,
      deltaBlob: 'none',
      samples: 100,
      now,
    });
    store.addEval({ atMs: now, accepted: 1, hardTestAcc: 0.625, valLoss: 1.25, checkpointBlob: 'none' });
    store.addToCounter('model_bytes_in', 1234);
    store.addToCounter('data_bytes_out', 99);

    metrics.observeMerge(0.02);
    metrics.observeMerge(0.3);
    metrics.observeValidation(1.5);
    const m = await scrape(app);

    const units = store.unitsByState();
    for (const state of UNIT_STATES)
      assert.equal(m.get(`arbor_units{state="${state}"}`), units[state], state);
    assert.equal(m.get('arbor_workers_connected'), 0);
    assert.equal(m.get('arbor_results_total{status="accepted"}'), 1);
    assert.equal(m.get('arbor_results_total{status="rejected"}'), 2);
    assert.equal(m.get('arbor_rejections_total{reason="stale"}'), 2);
    const counters = store.counters();
    assert.equal(m.get('arbor_bytes_total{direction="model_in"}'), 1234);
    assert.equal(m.get('arbor_bytes_total{direction="data_out"}'), 99);
    assert.equal(m.get('arbor_bytes_total{direction="model_out"}'), counters['model_bytes_out'] ?? 0);
    assert.equal(m.get('arbor_hard_test_accuracy'), 0.625);
    assert.equal(m.get('arbor_validation_loss'), 1.25);
    assert.equal(m.get('arbor_job_phase{phase="training"}'), 1);
    for (const phase of ['pretraining', 'routing', 'done'])
      assert.equal(m.get(`arbor_job_phase{phase="${phase}"}`), 0);
    const shards = store.listShards();
    const budget = shards.reduce((sum, s) => sum + s.budgetSamples, 0);
    const trained = shards.reduce((sum, s) => sum + Math.min(s.trainedSamples, s.budgetSamples), 0);
    assert.ok(trained > 0);
    assert.equal(m.get('arbor_trained_fraction'), trained / budget);

    assert.equal(m.get('arbor_merge_seconds_count'), 2);
    assert.ok(Math.abs(m.get('arbor_merge_seconds_sum')! - 0.32) < 1e-9);
    assert.equal(m.get('arbor_merge_seconds_bucket{le="0.025"}'), 1);
    assert.equal(m.get('arbor_merge_seconds_bucket{le="+Inf"}'), 2);
    assert.equal(m.get('arbor_validation_seconds_count'), 1);
    assert.equal(m.get('arbor_validation_seconds_bucket{le="1"}'), 0);

    assert.ok(m.has('process_cpu_user_seconds_total'), 'process metrics');
    assert.ok(m.has('nodejs_heap_size_used_bytes'), 'Node.js metrics');

    // Computed at scrape time: a later change shows on the next scrape.
    store.addToCounter('model_bytes_in', 1);
    assert.equal((await scrape(app)).get('arbor_bytes_total{direction="model_in"}'), 1235);
  });

  void it('gives every registration its own registry', async () => {
    const first = await metricsApp();
    const second = await metricsApp();
    first.metrics.observeValidation(0.1);
    assert.notEqual(first.metrics.registry, second.metrics.registry);
    assert.equal((await scrape(first.app)).get('arbor_validation_seconds_count'), 1);
    assert.equal((await scrape(second.app)).get('arbor_validation_seconds_count'), 0);
  });
});
