/** Who was there and who was training, in virtual milliseconds, per worker id. */
export interface Timeline {
  readonly present: Map<string, [number, number]>;
  /** Stretches of training, and whether their result was merged. */
  readonly busy: Map<string, { span: [number, number]; merged: boolean }[]>;
}

/** Shares of every connected volunteer's time over the whole job; they add up to 1. */
export interface CrowdTime {
  /** Training whose result was merged. */
  readonly utilization: number;
  /** Connected without a unit: waiting for work, or for the job to end. */
  readonly idle_fraction: number;
  /** Training whose result was never merged (rejected, vanished, handed back). */
  readonly wasted_fraction: number;
}

const overlap = ([a, b]: readonly [number, number], [c, d]: readonly [number, number]): number =>
  Math.max(0, Math.min(b, d) - Math.max(a, c));

/** Every volunteer's time from joining to leaving (or the job's end), as in CrowdTime. */
export function crowdTime(timeline: Timeline, endMs: number): CrowdTime {
  let present = 0;
  let merged = 0;
  let wasted = 0;
  for (const [id, [from, to]] of timeline.present) {
    const span: [number, number] = [from, Math.min(to, endMs)];
    present += span[1] - span[0];
    for (const stretch of timeline.busy.get(id) ?? []) {
      const time = overlap(stretch.span, span);
      if (stretch.merged) merged += time;
      else wasted += time;
    }
  }
  if (present === 0) return { utilization: 1, idle_fraction: 0, wasted_fraction: 0 };
  return {
    utilization: merged / present,
    idle_fraction: Math.max(0, 1 - (merged + wasted) / present),
    wasted_fraction: wasted / present,
  };
}
