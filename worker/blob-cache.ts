import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlobRef } from '../proto/messages.ts';
import { ROUTES } from '../proto/routes.ts';
import type { Static } from '@sinclair/typebox';
import { sha256Hex } from '../shared/content-hash.ts';
import { DEFAULT_MAX_CACHE_MB, touchBlob, trimCache } from './cache-trim.ts';

type Ref = Static<typeof BlobRef>;

export class BlobError extends Error {
  override readonly name = 'BlobError';
}

/** Blobs kept in memory: shard data (reused by every unit of its shard) apart from weights. */
const MEMORY_ENTRIES = { data: 4, weights: 2 } as const;
type Kind = keyof typeof MEMORY_ENTRIES;

/**
 * Content-addressed blobs from the coordinator, verified by SHA-256 and size, kept in
 * memory (a few) and on disk when a cache directory is given: a shard's data is downloaded
 * once per worker, however many of its units the worker trains.
 */
export class BlobCache {
  private readonly memory = { data: new Map<string, Uint8Array>(), weights: new Map<string, Uint8Array>() };
  bytesDownloaded = 0;

  constructor(
    private readonly httpBase: string,
    private readonly token?: string,
    private readonly cacheDir?: string,
    private readonly maxCacheBytes = DEFAULT_MAX_CACHE_MB * 1e6,
  ) {}

  async get(ref: Ref, kind: Kind = 'weights'): Promise<Uint8Array> {
    const memory = this.memory[kind];
    const hit = memory.get(ref.sha256) ?? (await this.fromDisk(ref));
    const bytes = hit ?? (await this.download(ref));
    memory.delete(ref.sha256);
    memory.set(ref.sha256, bytes);
    while (memory.size > MEMORY_ENTRIES[kind]) memory.delete(memory.keys().next().value!);
    return bytes;
  }

  /** Whether the blob is at hand without a download (memory, or the cache directory). */
  holds(sha256: string): boolean {
    return (
      this.memory.data.has(sha256) ||
      this.memory.weights.has(sha256) ||
      (this.cacheDir !== undefined && existsSync(join(this.cacheDir, sha256)))
    );
  }

  private async fromDisk(ref: Ref): Promise<Uint8Array | undefined> {
    if (this.cacheDir === undefined) return undefined;
    const path = join(this.cacheDir, ref.sha256);
    if (!existsSync(path)) return undefined;
    const bytes = await readFile(path);
    if (bytes.byteLength !== ref.bytes || sha256Hex(bytes) !== ref.sha256) return undefined;
    await touchBlob(this.cacheDir, ref.sha256);
    return bytes;
  }

  private async download(ref: Ref): Promise<Uint8Array> {
    const response = await fetch(`${this.httpBase}${ROUTES.blob.path(ref.sha256)}`, {
      headers: this.token !== undefined ? { authorization: `Bearer ${this.token}` } : {},
    });
    if (!response.ok) throw new BlobError(`blob ${ref.sha256}: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    this.bytesDownloaded += bytes.byteLength;
    if (bytes.byteLength !== ref.bytes)
      throw new BlobError(`blob ${ref.sha256}: ${bytes.byteLength} bytes, expected ${ref.bytes}`);
    if (sha256Hex(bytes) !== ref.sha256)
      throw new BlobError(`blob ${ref.sha256}: content does not match its hash`);
    if (this.cacheDir !== undefined) {
      await mkdir(this.cacheDir, { recursive: true });
      const path = join(this.cacheDir, ref.sha256);
      // Two workers may share a cache directory: each writes its own temporary file.
      const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
      await writeFile(temp, bytes);
      await rename(temp, path);
      await trimCache(this.cacheDir, this.maxCacheBytes, ref.sha256);
    }
    return bytes;
  }
}
