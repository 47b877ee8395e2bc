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

/**
 * Routes the training set through `top` (on `tree`, the full tree with every shard's
 * current subtree) and writes it down in one transaction: each shard's data, validation
 * slice and sibling outputs, and the top the data is now routed by. A coordinator that
 * stops before the transaction routes again when it restarts; nothing is half-written.
 * First routing (`first`) also sets up the shards' subtrees from the pretrained tree.
 */
export function applySlowRouting(
  ctx: SlowRoutingContext,
  tree: FFFWeights,
  top: TopNodes,
  first: boolean,
  alsoInTransaction: (sizes: number[]) => void = () => undefined,
): { migrated: number; imbalance: number; sizes: number[] } {
  const { store, blobs, config, train, log } = ctx;
  const started = performance.now();
  const K = config.frozen;
  const full = withTop(tree, top);
  const held = heldOutSamples(train.n, config.validation.fraction, config.seed);
  const routing = routeWithHeldOut(top, train, held);
  const before = store.getTop();
  let migrated = 0;
  if (before !== undefined) {
    const previous = routeThroughTop(
      decodeTop(blobs.read(before.routingBlob), `blob ${before.routingBlob}`),
      train.x,
      train.n,
    );
    for (let i = 0; i < train.n; i++) if (!held[i] && previous[i] !== routing.shardOf[i]) migrated++;
  }
  const rows: Shard[] = routing.shards.map((routed) => {
    const existing = first ? undefined : store.getShard(routed.id);
    const subtree = existing
      ? decodeFFF(blobs.read(existing.weightsBlob), `blob ${existing.weightsBlob}`)
      : extractSubtree(full, K, routed.id);
    const siblings = siblingOutputs(full, K, routed.id, routed.train.x, routed.train.n);
    return {
      id: routed.id,
      version: existing?.version ?? 0,
      samples: routed.train.n,
      dataBlob: blobs.put(encodeShardData(routed.train)),
      weightsBlob: existing?.weightsBlob ?? blobs.put(encodeFFF(subtree)),
      budgetSamples: routed.train.n * config.shard_epochs,
      // Progress through the schedule stays what it was; the budget follows the shard's size.
      trainedSamples: existing
        ? Math.round((existing.trainedSamples * routed.train.n) / Math.max(1, existing.samples))
        : 0,
      momentumBlob: existing?.momentumBlob ?? null,
      valBlob: blobs.put(encodeShardData(routed.val)),
      valLoss: hardCrossEntropy(subtree, routed.val),
      // The validation slice changed: the phase's best starts again.
      bestValLoss: null,
      bestPhase: null,
      contextBlob: blobs.put(encodeSiblings(siblings, routed.train.n)),
    };
  });
  const sizes = rows.map((row) => row.samples);
  const imbalance = Math.max(...sizes) / Math.max(1e-9, sizes.reduce((a, b) => a + b, 0) / sizes.length);
  const topBlob = blobs.put(encodeTop({ ...top, rightShare: routing.rightShare }));
  const version = before?.version ?? 0;
  const routingVersion = before === undefined ? 0 : before.routingVersion + 1;
  const seconds = (performance.now() - started) / 1000;
  store.transaction(() => {
    for (const row of rows) store.upsertShard(row);
    store.setTop({ blob: topBlob, version, routingVersion, routingBlob: topBlob, routedVersion: version });
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
