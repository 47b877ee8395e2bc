/**
 * Judges a path delta's move of the slow top on its own, so that many small steps cannot
 * add up to a steered top: its size against recent accepted path deltas, the routing
 * balance it would cause against the best balance the served top has had, and the served
 * loss it would cause against the best served loss (not the current one, which a run of
 * steps each within the tolerance would ratchet up).
 */
import type { Dataset } from '../../shared/data/dataset.ts';
import { type TopNodes, routeThroughTop } from '../../shared/fff/top-blob.ts';

/** Accepted path-delta norms remembered, and how many before the size rule judges. */
const RECENT_PATHS = 32;
const PATHS_BEFORE_JUDGING = 8;
/** A path delta larger than this many times the median recent one moves nothing. */
const PATH_SIZE_FACTOR = 8;
/** Routing may become this much less balanced than the best the served top had. */
const BALANCE_TOLERANCE = 0.1;

export interface TopProposal {
  readonly pathNorm: number;
  /** Every shard's validation slice, routed by each top. */
  readonly val: Dataset;
  readonly current: TopNodes;
  readonly serving: TopNodes;
  readonly stepped: TopNodes;
  /** The served model's validation loss now, and the change the step would make to it. */
  readonly served: { readonly before: number; readonly change: number };
}

/** Largest shard's share of the samples over the mean share: 1 when perfectly balanced. */
export function routingImbalance(top: TopNodes, val: Dataset): number {
  const counts = new Float64Array(2 ** top.levels);
  for (const shard of routeThroughTop(top, val.x, val.n)) counts[shard]!++;
  return Math.max(...counts) / Math.max(1e-9, val.n / counts.length);
}

export class TopGuard {
  private readonly pathNorms: number[] = [];
  private bestImbalance = Infinity;
  private bestServedLoss = Infinity;

  constructor(private readonly tolerance: number) {}

  /** Why the step must not move the top, or undefined. */
  judge(p: TopProposal): string | undefined {
    const sorted = [...this.pathNorms].sort((a, b) => a - b);
    if (sorted.length >= PATHS_BEFORE_JUDGING) {
      const median = sorted[Math.floor(sorted.length / 2)]!;
      if (p.pathNorm > PATH_SIZE_FACTOR * median)
        return `its path delta's norm ${p.pathNorm.toPrecision(3)} is over ${PATH_SIZE_FACTOR} times the median of recent ones (${median.toPrecision(3)})`;
    }
    this.bestImbalance = Math.min(this.bestImbalance, routingImbalance(p.serving, p.val));
    const after = routingImbalance(p.stepped, p.val);
    const limit = this.bestImbalance * (1 + BALANCE_TOLERANCE);
    if (after > limit && after > routingImbalance(p.current, p.val) + 1e-9)
      return `it unbalances the routing to ${after.toFixed(3)} (the served top's best ${this.bestImbalance.toFixed(3)}, limit ${limit.toFixed(3)})`;
    const { before, change } = p.served;
    if (!Number.isFinite(change)) return 'its served validation loss is not finite';
    this.bestServedLoss = Math.min(this.bestServedLoss, before);
    const servedLimit = this.bestServedLoss * (1 + this.tolerance);
    if (change > 1e-6 && before + change > servedLimit)
      return `it raises the served validation loss to ${(before + change).toFixed(4)}, over the best ${this.bestServedLoss.toFixed(4)} by more than the tolerance ${this.tolerance}`;
    return undefined;
  }

  accepted(pathNorm: number): void {
    this.pathNorms.push(pathNorm);
    if (this.pathNorms.length > RECENT_PATHS) this.pathNorms.shift();
  }
}
