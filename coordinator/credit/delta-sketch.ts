/**
 * A CountSketch of a subtree's parameters: each parameter adds itself, with a random sign,
 * to one of `dims` buckets. Linear (the sketch of a difference is the difference of the
 * sketches) and it keeps inner products in expectation, so cosine similarities between
 * deltas, and between a delta and a move of the served weights, cost one pass each and a
 * few kilobytes to remember.
 */
import { createRng } from '../../shared/random.ts';
import { type FFFShape, type FFFWeights, TENSOR_NAMES, parameterCount } from '../../shared/fff/weights.ts';

export type Sketch = Float64Array;

export class DeltaSketcher {
  private readonly bucket: Uint16Array;
  private readonly sign: Int8Array;

  constructor(
    shape: FFFShape,
    seed: number,
    readonly dims = 4096,
  ) {
    const count = parameterCount(shape);
    const rng = createRng(seed ^ 0x5ce7c4);
    this.bucket = new Uint16Array(count);
    this.sign = new Int8Array(count);
    for (let i = 0; i < count; i++) {
      this.bucket[i] = Math.floor(rng() * dims);
      this.sign[i] = rng() < 0.5 ? -1 : 1;
    }
  }

  sketch(weights: FFFWeights): Sketch {
    const out = new Float64Array(this.dims);
    let i = 0;
    for (const name of TENSOR_NAMES)
      for (const v of weights.tensors[name]) {
        out[this.bucket[i]!]! += this.sign[i]! * v;
        i++;
      }
    return out;
  }
}

/** cos(a, b − c) (c optional), 0 when either side is zero. */
export function cosine(a: Sketch, b: Sketch, c?: Sketch): number {
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]! - (c?.[i] ?? 0);
    dot += x * y;
    aa += x * x;
    bb += y * y;
  }
  return aa === 0 || bb === 0 ? 0 : dot / Math.sqrt(aa * bb);
}
