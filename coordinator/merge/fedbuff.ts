/**
 * `fedbuff` (Nguyen et al., "Federated Learning with Buffered Asynchronous Aggregation",
 * arXiv 2106.06639): a shard's deltas wait in a buffer, each weighted by 1/√(1+staleness),
 * until they make a round (the N units cut together, a partial result counting for what it
 * trained); then their weighted mean is one outer Nesterov step. Nothing moves in between.
 */
import { plusScaled, scaled } from './arithmetic.ts';
import { ROUND_EPSILON, roundShare } from './delayed-nesterov.ts';
import { zeroWeights } from '../../shared/fff/weights.ts';
import type { MergeInput, MergeProposal, MergeStrategy, OuterSettings } from './strategy.ts';

export function fedBuffStrategy(settings: OuterSettings): MergeStrategy {
  const { lr, momentum: beta } = settings;
  return {
    name: 'fedbuff',
    share: (peers) => roundShare(settings, peers),
    propose(input: MergeInput): MergeProposal {
      const { current, state, delta } = input;
      const weight = 1 / Math.sqrt(1 + Math.max(0, input.staleness));
      const pending = plusScaled(state.pending, weight, delta);
      const round = state.round + Math.max(0, Math.min(1, input.trained)) / Math.max(1, input.peers);
      const arrivals = state.arrivals + 1;
      const judged = plusScaled(current, lr, delta);
      if (round < 1 - ROUND_EPSILON)
        return { weights: current, state: { ...state, pending, round, arrivals }, judged, outerStep: false };
      const mean = scaled(1 / arrivals, pending);
      const momentum = plusScaled(scaled(beta, state.momentum), 1, mean);
      const weights = plusScaled(plusScaled(current, lr, mean), lr * beta, momentum);
      return {
        weights,
        state: { momentum, pending: zeroWeights(current.shape), round: 0, arrivals: 0 },
        judged,
        outerStep: true,
      };
    },
  };
}
