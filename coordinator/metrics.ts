/**
 * GET /metrics for Prometheus. Every job metric is read from the store at scrape time (so
 * it is current and survives restarts); only the two timing histograms live in memory.
 * Each coordinator gets its own registry, so several in one process do not clash.
 */
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RunningCoordinator } from './coordinator.ts';
import { JOB_PHASES, UNIT_STATES } from './store/store.ts';

export interface MetricsDeps {
  readonly coordinator: () => RunningCoordinator;
}

export interface CoordinatorMetrics {
  readonly registry: Registry;
  /** Seconds spent merging one accepted delta (outer optimizer step). */
  observeMerge(seconds: number): void;
  /** Seconds spent validating one delta against the shard's held-out samples. */
  observeValidation(seconds: number): void;
}

const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const MAX_REASON_LABEL = 40;

/**
 * A rejection reason as a label of bounded cardinality: the text before the first ':',
 * numbers masked as '#' (reasons such as "validation loss 0.41 is worse than 0.39 …" have
 * no colon), at most 40 characters.
 */
export function rejectionCategory(reason: string | null): string {
  const head = (reason ?? '').split(':', 1)[0] ?? '';
  const masked = head
    .replace(/\d+(?:\.\d+)?(?:e[+-]?\d+)?/gi, '#')
    .trim()
    .slice(0, MAX_REASON_LABEL)
    .trim();
  return masked.length > 0 ? masked : 'other';
}

export function registerMetrics(app: FastifyInstance, deps: MetricsDeps): CoordinatorMetrics {
  const register = new Registry();
  const registers = [register];
  collectDefaultMetrics({ register });
  const store = () => deps.coordinator().store;

  new Gauge({
    name: 'arbor_workers_connected',
    help: 'Workers connected over WebSocket now.',
    registers,
    collect() {
      this.set(deps.coordinator().connectedWorkers());
    },
  });
  new Gauge({
    name: 'arbor_units',
    help: 'Work units by state.',
    labelNames: ['state'],
    registers,
    collect() {
      const counts = store().unitsByState();
      for (const state of UNIT_STATES) this.set({ state }, counts[state]);
    },
  });
  new Counter({
    name: 'arbor_results_total',
    help: 'Results received, by verdict.',
    labelNames: ['status'],
    registers,
    collect() {
      const results = store().listResults();
      const accepted = results.filter((r) => r.status === 'accepted').length;
      this.reset();
      this.inc({ status: 'accepted' }, accepted);
      this.inc({ status: 'rejected' }, results.length - accepted);
    },
  });
  new Counter({
    name: 'arbor_rejections_total',
    help: 'Rejected results, by reason category.',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      for (const r of store().listResults())
        if (r.status === 'rejected') this.inc({ reason: rejectionCategory(r.reason) }, 1);
    },
  });
  new Counter({
    name: 'arbor_bytes_total',
    help: 'Bytes moved: model_out (weights served), model_in (deltas received), data_out (shard data served).',
    labelNames: ['direction'],
    registers,
    collect() {
      const counters = store().counters();
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
      this.set(store().listEvals().at(-1)?.hardTestAcc ?? NaN);
    },
  });
  new Gauge({
    name: 'arbor_validation_loss',
    help: 'Mean shard validation loss at the latest evaluation (NaN before the first).',
    registers,
    collect() {
      this.set(store().listEvals().at(-1)?.valLoss ?? NaN);
    },
  });
  new Gauge({
    name: 'arbor_job_phase',
    help: 'The job phase: 1 for the current one, 0 for the others.',
    labelNames: ['phase'],
    registers,
    collect() {
      const current = deps.coordinator().job.phase;
      for (const phase of JOB_PHASES) this.set({ phase }, phase === current ? 1 : 0);
    },
  });
  new Gauge({
    name: 'arbor_trained_fraction',
    help: 'Samples trained by accepted results (capped per shard at its budget) / the whole budget.',
    registers,
    collect() {
      let trained = 0;
      let budget = 0;
      for (const s of store().listShards()) {
        trained += Math.min(s.trainedSamples, s.budgetSamples);
        budget += s.budgetSamples;
      }
      this.set(budget > 0 ? trained / budget : 0);
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

  app.get('/metrics', async (_request, reply) =>
    reply.type(register.contentType).send(await register.metrics()),
  );
  app.addHook('onClose', (_instance, done) => {
    register.clear();
    done();
  });

  return {
    registry: register,
    observeMerge: (seconds) => merge.observe(seconds),
    observeValidation: (seconds) => validation.observe(seconds),
  };
}
