/**
 * GET /metrics for Prometheus. Every job metric is read from the read model at scrape time
 * (so it is current and survives restarts); only the two timing histograms live in memory.
 * Each coordinator gets its own registry, so several in one process do not clash.
 */
import type { FastifyPluginCallback } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CoordinatorCore } from '../core/coordinator-core.ts';
import type { ReadModel } from '../read/read-model.ts';
import { JOB_PHASES, UNIT_STATES } from '../store/store.ts';
import { requireReader } from './auth.ts';

export interface MetricsOptions {
  readonly read: ReadModel;
  /** Where the validation and merge timings come from. */
  readonly core: CoordinatorCore;
  /** When set, a scrape needs it (or the admin token) as a Bearer token. */
  readonly readToken?: string | undefined;
  readonly adminToken?: string | undefined;
}

const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export const metricsRoutes: FastifyPluginCallback<MetricsOptions> = (app, options, done) => {
  const { read, core } = options;
  const registers = [new Registry()];
  const [register] = registers as [Registry];
  collectDefaultMetrics({ register });
  // One snapshot per scrape, shared by every collector.
  let snapshot: ReturnType<ReadModel['metrics']> | undefined;
  const current = () => (snapshot ??= read.metrics());

  new Gauge({
    name: 'arbor_workers_connected',
    help: 'Workers connected over WebSocket now.',
    registers,
    collect() {
      this.set(read.connectedWorkers);
    },
  });
  new Gauge({
    name: 'arbor_units',
    help: 'Work units by state.',
    labelNames: ['state'],
    registers,
    collect() {
      for (const state of UNIT_STATES) this.set({ state }, current().units[state]);
    },
  });
  new Counter({
    name: 'arbor_results_total',
    help: 'Results received, by verdict.',
    labelNames: ['status'],
    registers,
    collect() {
      this.reset();
      this.inc({ status: 'accepted' }, current().results.accepted);
      this.inc({ status: 'rejected' }, current().results.rejected);
    },
  });
  new Counter({
    name: 'arbor_rejections_total',
    help: 'Rejected results, by the acceptance rule that refused them.',
    labelNames: ['rule'],
    registers,
    collect() {
      this.reset();
      for (const { rule, n } of current().rejectionsByRule) this.inc({ rule }, n);
    },
  });
  new Counter({
    name: 'arbor_bytes_total',
    help: 'Bytes moved: model_out (weights served), model_in (deltas received), data_out (shard data served).',
    labelNames: ['direction'],
    registers,
    collect() {
      const { counters } = current();
      this.reset();
      this.inc({ direction: 'model_out' }, counters['model_bytes_out'] ?? 0);
      this.inc({ direction: 'model_in' }, counters['model_bytes_in'] ?? 0);
      this.inc({ direction: 'data_out' }, counters['data_bytes_out'] ?? 0);
    },
  });
  new Gauge({
    name: 'arbor_hard_test_accuracy',
    help: 'Hard-inference test accuracy at the latest evaluation (NaN before the first).',
    registers,
    collect() {
      this.set(current().hardTestAcc ?? NaN);
    },
  });
  new Gauge({
    name: 'arbor_validation_loss',
    help: 'Mean shard validation loss at the latest evaluation (NaN before the first).',
    registers,
    collect() {
      this.set(current().valLoss ?? NaN);
    },
  });
  new Gauge({
    name: 'arbor_job_phase',
    help: 'The job phase: 1 for the current one, 0 for the others.',
    labelNames: ['phase'],
    registers,
    collect() {
      for (const phase of JOB_PHASES) this.set({ phase }, phase === read.phase ? 1 : 0);
    },
  });
  new Gauge({
    name: 'arbor_blob_store_bytes',
    help: "Bytes of the coordinator's blob files (blobs nothing needs are deleted after a while).",
    registers,
    collect() {
      this.set(current().storage.bytes);
    },
  });
  new Gauge({
    name: 'arbor_trained_fraction',
    help: 'Samples trained by accepted results (capped per shard at its budget) / the whole budget.',
    registers,
    collect() {
      this.set(current().trainedFraction);
    },
  });
  const merge = new Histogram({
    name: 'arbor_merge_seconds',
    help: 'Time to merge one accepted delta into its shard.',
    buckets: SECONDS_BUCKETS,
    registers,
  });
  const validation = new Histogram({
    name: 'arbor_validation_seconds',
    help: "Time to validate one delta on its shard's held-out samples.",
    buckets: SECONDS_BUCKETS,
    registers,
  });
  core.listen({ validated: (s) => validation.observe(s), merged: (s) => merge.observe(s) });

  app.get(
    '/metrics',
    { onRequest: requireReader(options.readToken, options.adminToken) },
    async (_request, reply) => {
      snapshot = undefined;
      return reply.type(register.contentType).send(await register.metrics());
    },
  );
  app.addHook('onClose', (_instance, done) => {
    register.clear();
    done();
  });
  done();
};
