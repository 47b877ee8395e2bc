import type { ShardSamples } from '../../proto/dashboard.ts';
import { decodeShardData } from '../../shared/data/shard-blob.ts';
import type { BlobStore } from '../store/blob-store.ts';
import type { Shard } from '../store/store.ts';

const IMAGES_PER_SHARD = 12;

interface ShardSummary {
  readonly classMix: number[];
  readonly samples: ShardSamples;
}

/**
 * What each shard holds: its class mix and a few of its real inputs. Shard data blobs are
 * immutable, so each is decoded once and only the summary is kept.
 */
export class ShardGallery {
  private readonly summaries = new Map<string, ShardSummary>();

  constructor(private readonly blobs: BlobStore) {}

  classMix(shard: Shard): number[] {
    return this.summary(shard).classMix;
  }

  samples(shard: Shard): ShardSamples {
    return this.summary(shard).samples;
  }

  private summary(shard: Shard): ShardSummary {
    const cached = this.summaries.get(shard.dataBlob);
    if (cached) return cached;
    const data = decodeShardData(this.blobs.read(shard.dataBlob), `shard ${shard.id} data`);
    const classMix = new Array<number>(data.classes).fill(0);
    for (let i = 0; i < data.n; i++) classMix[data.y[i]!]!++;
    const side = Math.round(Math.sqrt(data.inputWidth));
    const square = side * side === data.inputWidth;
    const images = [];
    for (let i = 0; i < Math.min(IMAGES_PER_SHARD, data.n) && square; i++) {
      const row = data.x.subarray(i * data.inputWidth, (i + 1) * data.inputWidth);
      const bytes = Buffer.from(Array.from(row, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255)));
      images.push({ label: data.y[i]!, pixels: bytes.toString('base64') });
    }
    const summary = {
      classMix,
      samples: { shard: shard.id, width: square ? side : 0, height: square ? side : 0, images },
    };
    this.summaries.set(shard.dataBlob, summary);
    return summary;
  }
}
