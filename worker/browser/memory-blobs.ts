import type { Static } from '@sinclair/typebox';
import type { BlobRef } from '../../proto/messages.ts';
import { ROUTES } from '../../proto/routes.ts';
import type { BlobSource } from '../volunteer-ports.ts';

type Ref = Static<typeof BlobRef>;

/** Blobs kept by a tab: its shard's data (reused by each of its units) and a few weights. */
const KEEP = { data: 2, weights: 2 } as const;

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Content-addressed blobs in a tab's memory, each verified by size and SHA-256 once. */
export class MemoryBlobs implements BlobSource {
  private readonly kept = { data: new Map<string, Uint8Array>(), weights: new Map<string, Uint8Array>() };
  bytesDownloaded = 0;

  constructor(
    private readonly httpBase: string,
    private readonly token?: string,
  ) {}

  async get(ref: Ref, kind: 'data' | 'weights' = 'weights'): Promise<Uint8Array> {
    const kept = this.kept[kind];
    const bytes = kept.get(ref.sha256) ?? (await this.download(ref));
    kept.delete(ref.sha256);
    kept.set(ref.sha256, bytes);
    while (kept.size > KEEP[kind]) kept.delete(kept.keys().next().value!);
    return bytes;
  }

  holds(sha256: string): boolean {
    return this.kept.data.has(sha256) || this.kept.weights.has(sha256);
  }

  private async download(ref: Ref): Promise<Uint8Array> {
    const response = await fetch(`${this.httpBase}${ROUTES.blob.path(ref.sha256)}`, {
      headers: this.token !== undefined ? { authorization: `Bearer ${this.token}` } : {},
    });
    if (!response.ok) throw new Error(`blob ${ref.sha256}: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    this.bytesDownloaded += bytes.byteLength;
    if (bytes.byteLength !== ref.bytes)
      throw new Error(`blob ${ref.sha256}: ${bytes.byteLength} bytes, expected ${ref.bytes}`);
    if ((await sha256Hex(bytes)) !== ref.sha256)
      throw new Error(`blob ${ref.sha256}: content does not match its hash`);
    return bytes;
  }
}
