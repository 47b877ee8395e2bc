import type { Series } from '../../proto/dashboard.ts';
import type { Store } from '../store/store.ts';

/** How the top has moved: what the dashboard, `arbor status` and the simulator report. */
export type TopActivity = NonNullable<Series['top']>;

const PAGE = 5000;

/** The top's history from the event log (undefined when the top is frozen). */
export function topActivity(store: Store): TopActivity | undefined {
  const row = store.getTop();
  if (row === undefined) return undefined;
  let updates = 0;
  let dropped = 0;
  const reroutes: { at_ms: number; migrated: number; imbalance: number; seconds: number }[] = [];
  const last = new Map<number, { node: number; size: number; version: number }>();
  for (let after = 0; ;) {
    const page = store.eventsAfter(after, PAGE);
    for (const event of page) {
      const data = event.data as Record<string, unknown>;
      if (event.kind === 'top') {
        updates++;
        const nodes = data.nodes as number[];
        const sizes = data.sizes as number[];
        nodes.forEach((node, k) =>
          last.set(node, { node, size: sizes[k]!, version: data.version as number }),
        );
      } else if (event.kind === 'rerouted') {
        reroutes.push({
          at_ms: event.atMs,
          migrated: data.migrated as number,
          imbalance: data.imbalance as number,
          seconds: data.seconds as number,
        });
      } else if (event.kind === 'accepted' && data.top_dropped !== undefined) dropped++;
    }
    if (page.length < PAGE) break;
    after = page.at(-1)!.id;
  }
  return {
    version: row.version,
    routing_version: row.routingVersion,
    updates,
    dropped,
    reroutes,
    last_update: [...last.values()].sort((a, b) => a.node - b.node),
  };
}
