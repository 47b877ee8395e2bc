/**
 * The blobs a resumed job loads or serves, checked against their names before it trains
 * again: a file damaged while the coordinator was down stops the start with its name,
 * instead of being merged into or handed to every volunteer of its shard.
 */
import type { BlobStore } from '../store/blob-store.ts';
import type { Store } from '../store/store.ts';

/** Reads every blob the job's rows still need (Store.blobsInUse) once; throws BlobDamagedError naming the first damaged file. */
export function verifyJobBlobs(store: Store, blobs: BlobStore): { blobs: number; bytes: number } {
  let bytes = 0;
  const names = store.blobsInUse();
  for (const name of names) bytes += blobs.read(name).byteLength;
  return { blobs: names.size, bytes };
}
