import { type FFFWeights, TENSOR_NAMES, cloneWeights, zeroWeights } from '../../shared/fff/weights.ts';

export interface OuterOptimizerSettings {
  /** Outer learning rate applied to the aggregated delta (DiLoCo uses 0.7 with Nesterov). */
  readonly lr: number;
  /** Nesterov momentum (DiLoCo: 0.9). */
  readonly momentum: number;
  /** Each unit of staleness multiplies a delta's weight by this factor. */
  readonly stalenessDiscount: number;
}

export interface BufferedDelta {
  readonly delta: FFFWeights;
  /** Current shard version minus the version the unit started from. */
  readonly staleness: number;
}

/**
 * The per-shard outer step ("slow merging"): theta += lr * nesterov(mean of buffered
 * deltas, each scaled by discount^staleness). Deltas are local - base, i.e. already a
 * descent direction. Pure host-side arithmetic on the checkpoint layout.
 */
export class OuterOptimizer {
  private momentumBuffer: FFFWeights;

  constructor(
    private readonly settings: OuterOptimizerSettings,
    template: FFFWeights,
    momentum?: FFFWeights,
  ) {
    this.momentumBuffer = momentum ? cloneWeights(momentum) : zeroWeights(template.shape);
  }

  get momentum(): FFFWeights {
    return this.momentumBuffer;
  }

  /** Returns the new parameters; `current` is left untouched. */
  step(current: FFFWeights, buffer: readonly BufferedDelta[]): FFFWeights {
    if (buffer.length === 0) return cloneWeights(current);
    const { lr, momentum, stalenessDiscount } = this.settings;
    const next = cloneWeights(current);
    const scales = buffer.map((b) => stalenessDiscount ** Math.max(0, b.staleness) / buffer.length);
    for (const name of TENSOR_NAMES) {
      const theta = next.tensors[name];
      const m = this.momentumBuffer.tensors[name];
      for (let i = 0; i < theta.length; i++) {
        let g = 0;
        for (let k = 0; k < buffer.length; k++) g += scales[k]! * buffer[k]!.delta.tensors[name][i]!;
        const mi = momentum * m[i]! + g;
        m[i] = mi;
        theta[i] = theta[i]! + lr * (momentum * mi + g);
      }
    }
    return next;
  }
}
