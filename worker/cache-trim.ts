/**
 * Keeps a worker's blob cache directory within its bound: when it holds more, the blobs
 * used longest ago go first (a blob's time is touched on every use). Files that are not
 * blobs (a token file, the worker's name, another process's partial download) are left.
 */
import { readdir, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';

const BLOB_NAME = /^[0-9a-f]{64}$/;

/** The bound when the volunteer sets none: about 25 shards of the default job. */
export const DEFAULT_MAX_CACHE_MB = 512;

/** Marks a cached blob as just used. */
export async function touchBlob(dir: string, sha256: string): Promise<void> {
  const now = new Date();
  await utimes(join(dir, sha256), now, now).catch(() => undefined);
}

/** Deletes the least recently used blobs until at most `maxBytes` remain; never `keep`. */
export async function trimCache(dir: string, maxBytes: number, keep?: string): Promise<number> {
  const blobs = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!BLOB_NAME.test(name)) continue;
    const info = await stat(join(dir, name)).catch(() => undefined);
    if (info !== undefined) blobs.push({ name, bytes: info.size, usedMs: info.mtimeMs });
  }
  let total = blobs.reduce((sum, blob) => sum + blob.bytes, 0);
  let removed = 0;
  for (const blob of blobs.sort((a, b) => a.usedMs - b.usedMs)) {
    if (total <= maxBytes) break;
    if (blob.name === keep) continue;
    await unlink(join(dir, blob.name)).catch(() => undefined);
    total -= blob.bytes;
    removed++;
  }
  return removed;
}
