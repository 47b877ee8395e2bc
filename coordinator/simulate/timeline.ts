/** Who was there and who was training, in virtual milliseconds, per worker id. */
export interface Timeline {
  readonly present: Map<string, [number, number]>;
  readonly busy: Map<string, [number, number][]>;
  /** When the last of the budget was handed out (Infinity while some is left). */
  budgetGoneMs: number;
}

const overlap = ([a, b]: readonly [number, number], [c, d]: readonly [number, number]): number =>
  Math.max(0, Math.min(b, d) - Math.max(a, c));

/**
 * Busy time over present time, both counted only while budget was left to hand out: the
 * share of the crowd's time the scheduler kept training (1 = no volunteer ever waited).
 */
export function utilization(timeline: Timeline, endMs: number): number {
  const window: [number, number] = [0, Math.min(endMs, timeline.budgetGoneMs)];
  let present = 0;
  let busy = 0;
  for (const [id, span] of timeline.present) {
    present += overlap(span, window);
    for (const stretch of timeline.busy.get(id) ?? []) busy += overlap(stretch, window);
  }
  return present === 0 ? 1 : busy / present;
}
