/**
 * Each shard's models as the coordinator holds them: its current subtree (decoded once per
 * version), the bases units were leased from, its outer-optimizer state, its validation
 * slice and the validation measures that judge deltas.
 */
import { decodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import type { Dataset } from '../../shared/data/dataset.ts';
import { decodeShardData } from '../../shared/data/shard-blob.ts';
import { hardCrossEntropy } from '../../shared/fff/hard-loss.ts';
import { softObjective } from '../../shared/fff/soft-loss.ts';
import type { FFFShape, FFFWeights } from '../../shared/fff/weights.ts';
import { type OuterState, decodeOuterState, emptyOuterState } from '../merge/outer-state.ts';
import type { BlobStore } from '../store/blob-store.ts';
import type { Shard } from '../store/store.ts';
import type { ValidationPhase } from './schedule.ts';

/** Bases of units in flight kept decoded: a crowd's units share a few. */
const DECODED_BASES = 32;
/** Measures of (weights, phase) kept. */
const MEASURES = 256;

export class ShardModels {
  private readonly weightsByShard = new Map<number, { blob: string; weights: FFFWeights }>();
  private readonly decodedBlobs = new Map<string, FFFWeights>();
  private readonly valByShard = new Map<number, Dataset>();
  private readonly measured = new Map<string, number>();
  private readonly outerByShard = new Map<number, { blob: string; state: OuterState }>();

  constructor(
    private readonly blobs: BlobStore,
    private readonly subtreeShape: FFFShape,
  ) {}

  /** The shard's current subtree (decoded once per version). */
  subtree(shard: Shard): FFFWeights {
    const cached = this.weightsByShard.get(shard.id);
    if (cached?.blob === shard.weightsBlob) return cached.weights;
    const weights = decodeFFF(this.blobs.read(shard.weightsBlob), `blob ${shard.weightsBlob}`);
    this.weightsByShard.set(shard.id, { blob: shard.weightsBlob, weights });
    return weights;
  }

  /** A merge just wrote these weights as the shard's `blob`: no need to decode them again. */
  remember(shard: number, blob: string, weights: FFFWeights): void {
    this.weightsByShard.set(shard, { blob, weights });
  }

  /** Weights kept in the blob store (a unit's base), decoded once while in use. */
  weightsOfBlob(blob: string): FFFWeights {
    let weights = this.decodedBlobs.get(blob);
    if (weights === undefined) {
      weights = decodeFFF(this.blobs.read(blob), `blob ${blob}`);
      if (this.decodedBlobs.size >= DECODED_BASES)
        this.decodedBlobs.delete(this.decodedBlobs.keys().next().value!);
      this.decodedBlobs.set(blob, weights);
    }
    return weights;
  }

  /**
   * The shard's outer-optimizer state (momentum, deltas of the round so far), read and
   * decoded once per version: every result of the shard is judged with it.
   */
  outerState(shard: Shard): OuterState {
    const blob = shard.momentumBlob;
    if (!blob) return emptyOuterState(this.subtreeShape);
    const cached = this.outerByShard.get(shard.id);
    if (cached?.blob === blob) return cached.state;
    const state = decodeOuterState(this.blobs.read(blob), this.subtreeShape, `blob ${blob}`);
    this.outerByShard.set(shard.id, { blob, state });
    return state;
  }

  validationSet(shard: Shard): Dataset {
    const cached = this.valByShard.get(shard.id);
    if (cached) return cached;
    if (!shard.valBlob) throw new Error(`shard ${shard.id} has no validation blob`);
    const val = decodeShardData(this.blobs.read(shard.valBlob), `blob ${shard.valBlob}`);
    this.valByShard.set(shard.id, val);
    return val;
  }

  /** The validation measure of `phase` for `weights` on the shard's validation slice. */
  validationMeasure(weights: FFFWeights, shard: Shard, phase: ValidationPhase): number {
    const val = this.validationSet(shard);
    return phase.routing === 'hard'
      ? hardCrossEntropy(weights, val)
      : softObjective(weights, val, phase.hardening);
  }

  /** The measure of the shard's current weights (each weights blob is measured once a phase). */
  currentMeasure(shard: Shard, phase: ValidationPhase): number {
    const key = `${shard.weightsBlob}:${phase.name}`;
    let value = this.measured.get(key);
    if (value === undefined) {
      value = this.validationMeasure(this.subtree(shard), shard, phase);
      if (this.measured.size > MEASURES) this.measured.clear();
      this.measured.set(key, value);
    }
    return value;
  }

  /** A re-route gave the shards new samples: their validation slices and measures change. */
  forgetData(): void {
    this.valByShard.clear();
    this.measured.clear();
  }
}
