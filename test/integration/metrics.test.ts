/**
 * GET /metrics through app.inject against a core on a seeded store: the scrape is
 * Prometheus text, the job gauges and counters match the store, the histograms count the
 * deltas the core judged and merged, process metrics are there, and two registrations do
 * not clash.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Submission } from '../../coordinator/core/acceptance.ts';
import { metricsRoutes } from '../../coordinator/http/metrics.ts';
import { ReadModel } from '../../coordinator/read/read-model.ts';
import { UNIT_STATES } from '../../coordinator/store/store.ts';
import type { Assign } from '../../proto/messages.ts';
import { PROTOCOL_VERSION } from '../../proto/version.ts';
import { encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import { zeroWeights } from '../../shared/fff/weights.ts';
import { type SeededCore, seededCore } from '../helpers/small-job.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function metricsApp(s: SeededCore): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  cleanups.push(() => app.close());
  await app.register(metricsRoutes, { read: new ReadModel(s.core, s.store, s.blobs, s.clock), core: s.core });
  await app.ready();
  return app;
}

async function setup(): Promise<SeededCore> {
  const s = await seededCore({ eval_every: 1 });
  cleanups.push(() => s.cleanup());
  return s;
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

void describe('coordinator metrics', () => {
  void it('exposes the job from the store, the histograms and the process metrics', async () => {
    const s = await setup();
    const { store, core } = s;
    const app = await metricsApp(s);
    const before = await scrape(app);
    assert.ok(
      Number.isNaN(before.get('arbor_hard_test_accuracy')),
      'no accuracy before the first evaluation',
    );
    assert.equal(before.get('arbor_results_total{status="rejected"}'), 0);

    // Two rejections (norm over the bound) and one accepted result, judged by the real core.
    const workerId = core.connect({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      name: 'w1',
      capabilities: { backend: 'cpu', threads: 1, gpu: false, samples_per_s: 1 },
    }).id;
    const submit = (body: Uint8Array) => {
      const assign = core.assign(workerId) as Assign;
      const sub: Submission = {
        unitId: assign.unit_id,
        workerId,
        leaseToken: assign.lease_token,
        body,
        metrics: {
          train_loss: 0.5,
          samples: s.job.schedule.unitSamples(store.getShard(assign.shard)!, { id: assign.unit_id }),
          seconds: 1,
        },
      };
      return core.submit(sub);
    };
    const huge = zeroWeights(s.job.subtreeShape);
    huge.tensors['nodes.bias'].fill(1e9);
    assert.equal(submit(encodeFFF(huge)).code, 'DELTA_REJECTED');
    assert.equal(submit(encodeFFF(huge)).code, 'DELTA_REJECTED');
    const small = zeroWeights(s.job.subtreeShape);
    small.tensors['leaves.b2'].fill(1e-3);
    assert.equal(submit(encodeFFF(small)).code, undefined);
    store.addToCounter('data_bytes_out', 99);
    const m = await scrape(app);

    const units = store.unitsByState();
    for (const state of UNIT_STATES)
      assert.equal(m.get(`arbor_units{state="${state}"}`), units[state], state);
    assert.equal(m.get('arbor_workers_connected'), 1);
    assert.equal(m.get('arbor_results_total{status="accepted"}'), 1);
    assert.equal(m.get('arbor_results_total{status="rejected"}'), 2);
    assert.equal(m.get('arbor_rejections_total{rule="norm-bounded"}'), 2);
    const counters = store.counters();
    assert.ok((counters['model_bytes_in'] ?? 0) > 0);
    assert.equal(m.get('arbor_bytes_total{direction="model_in"}'), counters['model_bytes_in']);
    assert.equal(m.get('arbor_bytes_total{direction="data_out"}'), 99);
    assert.equal(m.get('arbor_bytes_total{direction="model_out"}'), counters['model_bytes_out'] ?? 0);
    const latest = store.latestEval();
    assert.ok(latest, 'eval_every 1: the accepted result was evaluated');
    assert.equal(m.get('arbor_hard_test_accuracy'), latest.hardTestAcc);
    assert.equal(m.get('arbor_validation_loss'), latest.valLoss);
    assert.equal(m.get('arbor_job_phase{phase="training"}'), 1);
    for (const phase of ['pretraining', 'routing', 'done'])
      assert.equal(m.get(`arbor_job_phase{phase="${phase}"}`), 0);
    const shards = store.listShards();
    const budget = shards.reduce((sum, sh) => sum + sh.budgetSamples, 0);
    const trained = shards.reduce((sum, sh) => sum + Math.min(sh.trainedSamples, sh.budgetSamples), 0);
    assert.ok(trained > 0);
    assert.equal(m.get('arbor_trained_fraction'), trained / budget);
    assert.equal(m.get('arbor_blob_store_bytes'), s.blobs.stats().bytes);
    assert.ok(s.blobs.stats().bytes > 0);

    assert.equal(m.get('arbor_validation_seconds_count'), 3, 'every judged delta');
    assert.equal(m.get('arbor_merge_seconds_count'), 1, 'the merged one');
    assert.equal(m.get('arbor_merge_seconds_bucket{le="+Inf"}'), 1);

    assert.ok(m.has('process_cpu_user_seconds_total'), 'process metrics');
    assert.ok(m.has('nodejs_heap_size_used_bytes'), 'Node.js metrics');

    // Computed at scrape time: a later change shows on the next scrape.
    store.addToCounter('data_bytes_out', 1);
    assert.equal((await scrape(app)).get('arbor_bytes_total{direction="data_out"}'), 100);
  });

  void it('gives every registration its own registry', async () => {
    const first = await setup();
    const second = await setup();
    const firstApp = await metricsApp(first);
    const secondApp = await metricsApp(second);
    const workerId = first.core.connect({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      name: 'w1',
      capabilities: { backend: 'cpu', threads: 1, gpu: false, samples_per_s: 1 },
    }).id;
    const assign = first.core.assign(workerId) as Assign;
    first.core.submit({
      unitId: assign.unit_id,
      workerId,
      leaseToken: assign.lease_token,
      body: new Uint8Array(3),
      metrics: { train_loss: 0, samples: 1, seconds: 1 },
    });
    assert.equal((await scrape(firstApp)).get('arbor_validation_seconds_count'), 1);
    assert.equal((await scrape(secondApp)).get('arbor_validation_seconds_count'), 0);
  });
});
