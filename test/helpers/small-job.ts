/**
 * A small job whose pretraining is already done (an untrained tree stands in for it), so
 * that coordinator tests start at routing in milliseconds: a core on a seeded store for
 * unit tests, or a whole listening coordinator for socket tests.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { BlobStore } from '../../coordinator/store/blob-store.ts';
import { assembleCoordinator } from '../../coordinator/assemble.ts';
import type { CoordinatorCore } from '../../coordinator/core/coordinator-core.ts';
import type { TrainingJob } from '../../coordinator/job/training-job.ts';
import type { Retention } from '../../coordinator/core/upkeep.ts';
import { type JobConfig, parseJobConfig } from '../../coordinator/job/config.ts';
import { loadJobData } from '../../coordinator/job/job-data.ts';
import { treeShape } from '../../coordinator/job/pretrain.ts';
import type { ServerLimits } from '../../coordinator/http/limits.ts';
import {
  type CoordinatorOptions,
  type RunningCoordinator,
  startCoordinator,
} from '../../coordinator/main.ts';
import { SqliteStore } from '../../coordinator/store/sqlite-store.ts';
import type { Identity } from '../../coordinator/core/identity.ts';
import type { Hello } from '../../proto/messages.ts';
import { PROTOCOL_VERSION } from '../../proto/version.ts';
import type { Store } from '../../coordinator/store/store.ts';
import { encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import { ManualClock } from '../../shared/clock.ts';
import type { DataSplit, Dataset } from '../../shared/data/dataset.ts';
import { initWeights } from '../../shared/fff/init.ts';
import { type FFFShape, type FFFWeights, TENSOR_NAMES, zeroWeights } from '../../shared/fff/weights.ts';
import { createRng } from '../../shared/random.ts';

/** A wasm worker's hello at `samplesPerSecond`. */
export const helloAs = (name: string, samplesPerSecond = 1000): Hello => ({
  type: 'hello',
  protocol: PROTOCOL_VERSION,
  name,
  capabilities: { backend: 'wasm', threads: 1, gpu: false, samples_per_s: samplesPerSecond },
});

/** The identity a volunteer token `arb_<tokenId>_…` gives (its worker ids are `w-<tokenId>`, `-2`…). */
export const volunteerIdentity = (tokenId: string): Identity => ({
  kind: 'volunteer',
  tokenId,
  name: tokenId,
});

let smallDeltas = 0;

/**
 * A delta that shows work (above the norm floor) without changing what the model does much:
 * ±1e-4 everywhere, with signs of its own, so that no two are copies of each other (own-work).
 */
export function smallDelta(shape: FFFShape): FFFWeights {
  const w = zeroWeights(shape);
  const rng = createRng(0x5a11 + smallDeltas++);
  for (const name of TENSOR_NAMES) w.tensors[name].forEach((_, i, a) => (a[i] = rng() < 0.5 ? 1e-4 : -1e-4));
  return w;
}

export const SMALL_JOB = {
  data: 'mnist',
  depth: 3,
  frozen: 1,
  leaf: 4,
  pretrain: { epochs: 1 },
  shard_epochs: 2,
  local_epochs: 1,
  lease_ms: 5_000,
  heartbeat_ms: 200,
} as const;

const silent = pino({ level: 'silent' });

/** `n` samples of `width` features in 4 classes, each class a noisy prototype (seeded). */
function tinySet(name: string, n: number, width: number, seed: number): Dataset {
  const rng = createRng(seed);
  const prototypes = Array.from({ length: 4 }, () => Array.from({ length: width }, () => rng()));
  const x = new Float32Array(n * width);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 4;
    for (let j = 0; j < width; j++)
      x[i * width + j] = Math.min(1, Math.max(0, prototypes[i % 4]![j]! + (rng() - 0.5) * 0.3));
  }
  return { name, n, inputWidth: width, classes: 4, x, y };
}

/** Synthetic data small enough for millisecond tests: 400 train, 100 test, 16 features. */
export const tinyData = (): DataSplit => ({
  train: tinySet('tiny-train', 400, 16, 1),
  test: tinySet('tiny-test', 100, 16, 2),
});

/** Writes the job row and an untrained tree as if pretraining had just finished. */
export function seedPretrained(store: Store, blobs: BlobStore, config: JobConfig, data: DataSplit): void {
  const tree = initWeights(treeShape(config, data.train), config.seed);
  store.createJob(JSON.stringify(config), 0);
  store.setJobPhase('routing', 0, blobs.put(encodeFFF(tree)));
}

/** A database file whose job has just finished pretraining (see seedPretrained). */
export function seedDatabase(dbPath: string, config: JobConfig, data: DataSplit): void {
  const store = new SqliteStore(dbPath);
  seedPretrained(store, new BlobStore(`${dbPath}.blobs`), config, data);
  store.close();
}

export interface SeededCore {
  readonly core: CoordinatorCore;
  readonly store: SqliteStore;
  readonly blobs: BlobStore;
  readonly job: TrainingJob;
  readonly clock: ManualClock;
  readonly dir: string;
  cleanup(): void;
}

/** A core on an in-memory store with a hand-driven clock, routed and ready to lease. */
export async function seededCore(
  settings: Record<string, unknown> = {},
  options: { sharedToken?: string; retention?: Retention } = {},
): Promise<SeededCore> {
  const dir = mkdtempSync(join(tmpdir(), 'arbor-core-'));
  const config = parseJobConfig({ ...SMALL_JOB, data: 'tiny', ...settings });
  const data = tinyData();
  const store = new SqliteStore(':memory:');
  const clock = new ManualClock(1_000_000);
  const blobs = new BlobStore(join(dir, 'blobs'), clock);
  seedPretrained(store, blobs, config, data);
  const finalModelPath = join(dir, 'final.safetensors');
  const { job, core } = assembleCoordinator({
    store,
    blobs,
    config,
    data,
    clock,
    log: silent,
    finalModelPath,
    ...options,
  });
  await core.prepare();
  return {
    core,
    store,
    blobs,
    job,
    clock,
    dir,
    cleanup() {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let mnist: Promise<DataSplit> | undefined;

/** The embedded MNIST split, loaded once per process. */
export function smallJobData(): Promise<DataSplit> {
  return (mnist ??= loadJobData(parseJobConfig(SMALL_JOB)));
}

export interface SmallCoordinator {
  readonly coordinator: RunningCoordinator;
  readonly wsUrl: string;
  readonly dir: string;
  close(): Promise<void>;
}

/** A listening coordinator on loopback with the embedded MNIST, routed and ready to lease. */
export async function startSmallCoordinator(
  options: {
    token?: string;
    settings?: Record<string, unknown>;
    clock?: ManualClock;
    limits?: Partial<ServerLimits>;
    /** Admin and read tokens, open enrolment. */
    access?: Pick<CoordinatorOptions, 'adminToken' | 'readToken' | 'enrolment'>;
  } = {},
): Promise<SmallCoordinator> {
  const dir = mkdtempSync(join(tmpdir(), 'arbor-small-'));
  const config = parseJobConfig({ ...SMALL_JOB, ...options.settings });
  const data = await smallJobData();
  const dbPath = join(dir, 'arbor.db');
  seedDatabase(dbPath, config, data);
  const coordinator = await startCoordinator({
    config,
    dbPath,
    data,
    host: '127.0.0.1',
    port: 0,
    log: silent,
    finalModelPath: join(dir, 'final.safetensors'),
    ...(options.token !== undefined ? { token: options.token } : {}),
    ...(options.clock !== undefined ? { clock: options.clock } : {}),
    ...(options.limits !== undefined ? { limits: options.limits } : {}),
    ...options.access,
  });
  await coordinator.prepared;
  return {
    coordinator,
    wsUrl: `${coordinator.url.replace(/^http/, 'ws')}/v1/ws`,
    dir,
    async close() {
      await coordinator.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
