/**
 * The blobs a resumed job loads or serves, checked against their names before it trains
 * again: a file damaged while the coordinator was down stops the start with its name,
 * instead of being merged into or handed to every volunteer of its shard.
 */
import type { BlobStore } from '../store/blob-store.ts';
import type { Store } from '../store/store.ts';

/** The tree, every shard's data, weights, outer state, validation slice and context, the top, and units in flight. */
export function jobBlobs(store: Store): Set<string> {
  const names: (string | null | undefined)[] = [store.getJob()?.treeBlob];
  for (const shard of store.listShards())
    names.push(shard.dataBlob, shard.weightsBlob, shard.momentumBlob, shard.valBlob, shard.contextBlob);
  const top = store.getTop();
  if (top !== undefined) names.push(top.blob, top.routingBlob);
  for (const unit of store.leasedUnits()) names.push(unit.baseBlob, unit.heldBlob);
  return new Set(names.filter((name): name is string => typeof name === 'string' && name !== ''));
}

/** Reads every blob of the job once; throws BlobDamagedError naming the first damaged file. */
export function verifyJobBlobs(store: Store, blobs: BlobStore): { blobs: number; bytes: number } {
  let bytes = 0;
  const names = jobBlobs(store);
  for (const name of names) bytes += blobs.read(name).byteLength;
  return { blobs: names.size, bytes };
}
