/**
 * How a shard's accepted deltas become steps of its weights (the "outer" optimizer), as one
 * pluggable object in the manner of Flower's Strategy: given the shard's weights and outer
 * state and one result, it proposes the new weights and state. Acceptance rules judge the
 * proposal's `judged` model; they never compute a merge themselves.
 */
import type { FFFWeights } from '../../shared/fff/weights.ts';
import type { OuterState } from './outer-state.ts';

export const STRATEGY_NAMES = ['sum', 'delayed-nesterov', 'fedbuff'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

export interface OuterSettings {
  readonly strategy: StrategyName;
  readonly lr: number;
  /** Results averaged into one step, at most (the units in flight, when fewer). */
  readonly round: number;
  readonly momentum: number;
  readonly staleness_discount: number;
  readonly stale_correction: 'none' | 'project';
}

export interface MergeInput {
  readonly current: FFFWeights;
  readonly state: OuterState;
  /** local − base, as the worker trained it. */
  readonly delta: FFFWeights;
  /** What the shard moved since the delta's base (current − base), when known. */
  readonly moved?: FFFWeights;
  /** Versions of the shard merged since the delta's base. */
  readonly staleness: number;
  /** Units of the shard in flight together when this one was cut, itself included (N ≥ 1). */
  readonly peers: number;
  /** Share of its unit the result trained (below 1 for a partial result). */
  readonly trained: number;
}

export interface MergeProposal {
  readonly weights: FFFWeights;
  readonly state: OuterState;
  /** The model acceptance judges: the delta's own effect at the outer rate, on the current weights. */
  readonly judged: FFFWeights;
  /** True when this result completed a round and the outer momentum stepped. */
  readonly outerStep: boolean;
}

export interface MergeStrategy {
  readonly name: StrategyName;
  /** The share of the shard's schedule a result moves it by, per unit of its window, among `peers`. */
  share(peers: number): number;
  propose(input: MergeInput): MergeProposal;
}
