/**
 * `sum`: every accepted delta is a step of its own, applied whole at the outer rate with
 * the outer Nesterov momentum, a stale one first losing what its shard already moved its
 * way (stale-correction.ts). The rule of every job before strategies existed: kept so that
 * results can be compared.
 */
import { OuterOptimizer } from './outer-optimizer.ts';
import { emptyOuterState } from './outer-state.ts';
import { withoutCoveredPart } from './stale-correction.ts';
import { plusScaled } from './arithmetic.ts';
import type { MergeInput, MergeProposal, MergeStrategy, OuterSettings } from './strategy.ts';

export function sumStrategy(settings: OuterSettings): MergeStrategy {
  return {
    name: 'sum',
    share: () => 1,
    propose(input: MergeInput): MergeProposal {
      const { current, state, staleness, moved } = input;
      const delta =
        settings.stale_correction === 'project' && staleness > 0 && moved !== undefined
          ? withoutCoveredPart(input.delta, moved)
          : input.delta;
      const optimizer = new OuterOptimizer(
        { lr: settings.lr, momentum: settings.momentum, stalenessDiscount: settings.staleness_discount },
        current,
        state.momentum,
      );
      const weights = optimizer.step(current, [{ delta, staleness }]);
      const discount = settings.staleness_discount ** Math.max(0, staleness);
      return {
        weights,
        state: { ...emptyOuterState(current.shape), momentum: optimizer.momentum },
        judged: settings.momentum === 0 ? weights : plusScaled(current, settings.lr * discount, delta),
        outerStep: true,
      };
    },
  };
}
