/**
 * A slow top's re-route: how long it takes at a job's scale, and the longest the
 * coordinator's event loop waits meanwhile (the baseline: the whole re-route, what it
 * waited when re-routes blocked).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pino from 'pino';
import type { JobConfig } from '../coordinator/job/config.ts';
import { treeShape } from '../coordinator/job/pretrain.ts';
import { BlobStore } from '../coordinator/store/blob-store.ts';
import { SqliteStore } from '../coordinator/store/sqlite-store.ts';
import { applySlowRouting } from '../coordinator/top/slow-routing.ts';
import type { DataSplit } from '../shared/data/dataset.ts';
import { initWeights } from '../shared/fff/init.ts';
import { topOfTree } from '../shared/fff/top-blob.ts';

export interface RerouteBenchResult {
  readonly data: string;
  readonly depth: number;
  readonly frozen: number;
  readonly leaf: number;
  readonly samples: number;
  readonly reroute_s: number;
  /** The longest single wait of the event loop during the re-route. */
  readonly max_stall_ms: number;
  readonly p99_stall_ms: number;
  /** max_stall over the whole re-route (1 would be a blocking re-route). */
  readonly stall_ratio: number;
}

export async function benchReroute(config: JobConfig, data: DataSplit): Promise<RerouteBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'arbor-bench-reroute-'));
  const store = new SqliteStore(':memory:');
  try {
    // Routing does the same work whatever the weights: an untrained tree stands in.
    const tree = initWeights(treeShape(config, data.train), config.seed);
    const ctx = {
      store,
      blobs: new BlobStore(join(dir, 'blobs')),
      config,
      train: data.train,
      log: pino({ level: 'silent' }),
      now: () => Date.now(),
    };
    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    const started = performance.now();
    await applySlowRouting(ctx, tree, topOfTree(tree, config.frozen), true);
    const seconds = (performance.now() - started) / 1000;
    delay.disable();
    const max = delay.max / 1e6;
    return {
      data: config.data,
      depth: config.depth,
      frozen: config.frozen,
      leaf: config.leaf,
      samples: data.train.n,
      reroute_s: seconds,
      max_stall_ms: max,
      p99_stall_ms: delay.percentile(99) / 1e6,
      stall_ratio: max / 1000 / seconds,
    };
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
