/** The strategy a job's `outer.strategy` names. */
import { delayedNesterovStrategy } from './delayed-nesterov.ts';
import { fedBuffStrategy } from './fedbuff.ts';
import type { MergeStrategy, OuterSettings } from './strategy.ts';
import { sumStrategy } from './sum.ts';

export function mergeStrategy(settings: OuterSettings): MergeStrategy {
  switch (settings.strategy) {
    case 'sum':
      return sumStrategy(settings);
    case 'delayed-nesterov':
      return delayedNesterovStrategy(settings);
    case 'fedbuff':
      return fedBuffStrategy(settings);
  }
}
