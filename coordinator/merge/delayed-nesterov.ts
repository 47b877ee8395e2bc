/**
 * `delayed-nesterov` (Liu et al., "Asynchronous Local-SGD", arXiv 2401.09135, eq. 5): the N
 * units of a shard in flight together start from about the same weights, so their deltas
 * are averaged, not summed. Each arriving delta moves the shard by lr·Δ/N at once; the
 * deltas also gather until they make a round (N arrivals, a partial result counting for
 * what it trained), and then the outer Nesterov momentum steps once with their mean, as
 * DiLoCo's outer optimizer does with its workers' mean. With N = 1 it is outer Nesterov on
 * every delta.
 */
import { plusScaled, scaled } from './arithmetic.ts';
import { zeroWeights } from '../../shared/fff/weights.ts';
import type { MergeInput, MergeProposal, MergeStrategy, OuterSettings } from './strategy.ts';

/** A round is complete within this of a whole (shares are 1/N sums). */
export const ROUND_EPSILON = 1e-9;

/**
 * The share of a round one of `peers` results in flight together makes: 1/N while N is at
 * most the round's size W, else 1/W, so that peers beyond W move the schedule on faster.
 */
export const roundShare = (settings: Pick<OuterSettings, 'round'>, peers: number): number =>
  1 / Math.max(1, Math.min(peers, settings.round));

export function delayedNesterovStrategy(settings: OuterSettings): MergeStrategy {
  const { lr, momentum: beta } = settings;
  return {
    name: 'delayed-nesterov',
    share: (peers) => roundShare(settings, peers),
    propose(input: MergeInput): MergeProposal {
      const { current, state, delta } = input;
      const n = Math.max(1, input.peers);
      let weights = plusScaled(current, lr / n, delta);
      const pending = plusScaled(state.pending, 1 / n, delta);
      const round = state.round + Math.max(0, Math.min(1, input.trained)) / n;
      const arrivals = state.arrivals + 1;
      const judged = plusScaled(current, lr, delta);
      if (round < 1 - ROUND_EPSILON)
        return { weights, state: { ...state, pending, round, arrivals }, judged, outerStep: false };
      // The round's mean (pending / round) enters the momentum, which then steps once.
      const mean = scaled(1 / round, pending);
      const momentum = plusScaled(scaled(beta, state.momentum), 1, mean);
      if (beta > 0) weights = plusScaled(weights, lr * beta, momentum);
      return {
        weights,
        state: { momentum, pending: zeroWeights(current.shape), round: 0, arrivals: 0 },
        judged,
        outerStep: true,
      };
    },
  };
}
