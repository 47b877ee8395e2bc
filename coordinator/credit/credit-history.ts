/**
 * What a shard's recent work looked like, for judging whether a new delta is work of its
 * own: sketches of its recently merged deltas, and of the weights it recently served (any
 * two of which a worker may have downloaded and subtracted). Kept in memory; after a
 * restart it fills again with the next merges.
 */
import type { FFFShape, FFFWeights } from '../../shared/fff/weights.ts';
import { DeltaSketcher, type Sketch, cosine } from './delta-sketch.ts';

/** Merged deltas remembered per shard. */
const RECENT_DELTAS = 16;
/**
 * Served weights remembered per shard (every pair of them is a move a worker could copy): a
 * crowd's units are leased from bases many versions old (Fashion-MNIST, 64 volunteers: the
 * move from a base 8 versions back was not caught with 8), 24 × 32 KiB of sketch a shard.
 */
const RECENT_SERVED = 24;

export interface DeltaEvidence {
  readonly sketch: Sketch;
}

export interface Likeness {
  /** Largest |cosine| with a recently merged delta of the shard. */
  readonly merged: number;
  /** Largest |cosine| with the difference of two recently served weights of the shard. */
  readonly served: number;
}

interface ShardHistory {
  readonly deltas: Sketch[];
  readonly served: { readonly blob: string; readonly sketch: Sketch }[];
}

export class CreditHistory {
  private readonly sketcher: DeltaSketcher;
  private readonly shards = new Map<number, ShardHistory>();

  constructor(shape: FFFShape, seed: number) {
    this.sketcher = new DeltaSketcher(shape, seed);
  }

  evidence(delta: FFFWeights): DeltaEvidence {
    return { sketch: this.sketcher.sketch(delta) };
  }

  /** How much `evidence` looks like the shard's recent work; `current` is what it serves now. */
  likeness(shard: number, current: { blob: string; weights: FFFWeights }, evidence: DeltaEvidence): Likeness {
    const history = this.historyOf(shard, current);
    let merged = 0;
    for (const sketch of history.deltas) merged = Math.max(merged, Math.abs(cosine(evidence.sketch, sketch)));
    let served = 0;
    const s = history.served;
    for (let j = 1; j < s.length; j++)
      for (let i = 0; i < j; i++)
        served = Math.max(served, Math.abs(cosine(evidence.sketch, s[j]!.sketch, s[i]!.sketch)));
    return { merged, served };
  }

  /** A delta was merged and the shard now serves `weights` as `blob`. */
  merged(shard: number, evidence: DeltaEvidence, after: { blob: string; weights: FFFWeights }): void {
    const history = this.historyOf(shard, after);
    history.deltas.push(evidence.sketch);
    if (history.deltas.length > RECENT_DELTAS) history.deltas.shift();
  }

  private historyOf(shard: number, current: { blob: string; weights: FFFWeights }): ShardHistory {
    let history = this.shards.get(shard);
    if (history === undefined) this.shards.set(shard, (history = { deltas: [], served: [] }));
    if (history.served.at(-1)?.blob !== current.blob) {
      history.served.push({ blob: current.blob, sketch: this.sketcher.sketch(current.weights) });
      if (history.served.length > RECENT_SERVED) history.served.shift();
    }
    return history;
  }
}
