import type { Logger } from 'pino';
import { decodeFFF, encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import type { Dataset } from '../../shared/data/dataset.ts';
import { encodeShardData } from '../../shared/data/shard-blob.ts';
import { hardCrossEntropy } from '../../shared/fff/hard-loss.ts';
import { extractSubtree } from '../../shared/fff/subtree.ts';
import {
  type TopNodes,
  decodeTop,
  encodeSiblings,
  encodeTop,
  routeThroughTop,
  withTop,
} from '../../shared/fff/top-blob.ts';
import type { FFFWeights } from '../../shared/fff/weights.ts';
import type { BlobStore } from '../store/blob-store.ts';
import type { Shard, Store } from '../store/store.ts';
import { heldOutSamples, routeWithHeldOut } from './route-held-out.ts';
import { siblingOutputs } from './sibling-outputs.ts';
import type { TopSettings } from './slow-top.ts';

export interface SlowRoutingContext {
  readonly store: Store;
  readonly blobs: BlobStore;
  readonly config: TopSettings;
  readonly train: Dataset;
  readonly log: Logger;
  readonly now: () => number;
}

const CHUNK = 1024;
const pause = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Sibling outputs of a shard's samples, a chunk at a time, letting the coordinator answer in between. */
async function siblingsOf(full: FFFWeights, K: number, shard: number, data: Dataset): Promise<Float32Array> {
  const width = K * full.shape.outputWidth;
  const out = new Float32Array(data.n * width);
  const I = data.inputWidth;
  for (let start = 0; start < data.n; start += CHUNK) {
    const rows = Math.min(CHUNK, data.n - start);
    out.set(
      siblingOutputs(full, K, shard, data.x.subarray(start * I, (start + rows) * I), rows),
      start * width,
    );
    await pause();
  }
  return out;
}

/**
 * Routes the training set through `top` (on `tree`, the full tree with every shard's
 * subtree) and writes it down in one transaction: each shard's data, validation slice and
 * sibling outputs, and the top the data is now routed by. The work before it yields to
 * the event loop, so results keep merging meanwhile: the transaction re-reads the shards
 * and the top and changes only what routing owns. A coordinator that stops before the
 * transaction routes again when it restarts; nothing is half-written. First routing
 * (`first`) also sets up the shards' subtrees from the pretrained tree.
 */
export async function applySlowRouting(
  ctx: SlowRoutingContext,
  tree: FFFWeights,
  top: TopNodes,
  first: boolean,
  alsoInTransaction: (sizes: number[]) => void = () => undefined,
): Promise<{ migrated: number; imbalance: number; sizes: number[] }> {
  const { store, blobs, config, train, log } = ctx;
  const started = performance.now();
  await pause();
  const K = config.frozen;
  const full = withTop(tree, top);
  const held = heldOutSamples(train.n, config.validation.fraction, config.seed);
  const routing = routeWithHeldOut(top, train, held);
  await pause();
  const before = store.getTop();
  let migrated = 0;
  if (before !== undefined) {
    const previous = routeThroughTop(
      decodeTop(blobs.read(before.routingBlob), `blob ${before.routingBlob}`),
      train.x,
      train.n,
    );
    for (let i = 0; i < train.n; i++) if (!held[i] && previous[i] !== routing.shardOf[i]) migrated++;
    await pause();
  }
  const routed: Omit<Shard, 'version' | 'weightsBlob' | 'trainedSamples'>[] = [];
  for (const shard of routing.shards) {
    const existing = first ? undefined : store.getShard(shard.id);
    const subtree = existing
      ? decodeFFF(blobs.read(existing.weightsBlob), `blob ${existing.weightsBlob}`)
      : extractSubtree(full, K, shard.id);
    const siblings = await siblingsOf(full, K, shard.id, shard.train);
    const valLoss = hardCrossEntropy(subtree, shard.val);
    await pause();
    routed.push({
      id: shard.id,
      samples: shard.train.n,
      dataBlob: blobs.put(encodeShardData(shard.train)),
      budgetSamples: shard.train.n * config.shard_epochs,
      valBlob: blobs.put(encodeShardData(shard.val)),
      valLoss,
      // The validation slice changed: the phase's best starts again.
      bestValLoss: null,
      bestPhase: null,
      contextBlob: blobs.put(encodeSiblings(siblings, shard.train.n)),
    });
    await pause();
  }
  const sizes = routed.map((row) => row.samples);
  const imbalance = Math.max(...sizes) / Math.max(1e-9, sizes.reduce((a, b) => a + b, 0) / sizes.length);
  const routingBlob = blobs.put(encodeTop({ ...top, rightShare: routing.rightShare }));
  const version = before?.version ?? 0;
  const routingVersion = before === undefined ? 0 : before.routingVersion + 1;
  const seconds = (performance.now() - started) / 1000;
  store.transaction(() => {
    // A job that ended meanwhile keeps the routing it ended with.
    if (!first && store.getJob()?.phase !== 'training') return;
    for (const row of routed) {
      const current = first ? undefined : store.getShard(row.id);
      store.upsertShard(
        current
          ? {
              ...current,
              ...row,
              // Progress through the schedule stays what it was; the budget follows the size.
              trainedSamples: Math.round(
                (current.trainedSamples * row.samples) / Math.max(1, current.samples),
              ),
            }
          : {
              ...row,
              version: 0,
              trainedSamples: 0,
              weightsBlob: blobs.put(encodeFFF(extractSubtree(full, K, row.id))),
              momentumBlob: null,
            },
      );
    }
    // Top updates merged meanwhile stay; they take the new split shares.
    const now = store.getTop();
    const blob =
      now === undefined || now.version === version
        ? routingBlob
        : blobs.put(
            encodeTop({
              ...decodeTop(blobs.read(now.blob), `blob ${now.blob}`),
              rightShare: routing.rightShare,
            }),
          );
    store.setTop({
      blob,
      version: now?.version ?? version,
      routingVersion,
      routingBlob,
      routedVersion: version,
    });
    if (!first)
      store.appendEvent(
        'rerouted',
        { routing_version: routingVersion, top_version: version, migrated, imbalance, sizes, seconds },
        ctx.now(),
      );
    alsoInTransaction(sizes);
  });
  log.info({ routing_version: routingVersion, migrated, imbalance, seconds: seconds.toFixed(1) }, 'routed');
  return { migrated, imbalance, sizes };
}
