import type { Store } from '../store/store.ts';

/** How the top has moved: what the dashboard, `arbor status` and the simulator report. */
export interface TopActivity {
  readonly version: number;
  readonly routing_version: number;
  /** Path deltas merged into the top, and those dropped (stale, or worse on validation). */
  readonly updates: number;
  readonly dropped: number;
  /** Each re-route: when, samples that changed shard, largest shard over the mean. */
  readonly reroutes: readonly { at_ms: number; migrated: number; imbalance: number; seconds: number }[];
  /** Per top node, the L2 size of its latest update. */
  readonly last_update: readonly { node: number; size: number; version: number }[];
}

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
