/**
 * How a crowd spent its time: every connected volunteer's time over the whole job, as merged
 * work, idle waiting and wasted work. The simulator records its timeline as it runs; a real
 * job's comes from its events.
 */
import type { EventRow } from '../store/store.ts';

/** Who was there and who was training, in milliseconds, per worker id. */
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

/** A job's crowd time from its recorded events (the oldest pruned ones aside). */
export function crowdTimeOf(events: readonly EventRow[], endMs: number): CrowdTime {
  return crowdTime(timelineOfEvents(events, endMs), endMs);
}

interface Lease {
  readonly worker: string;
  readonly from: number;
}

/**
 * The timeline of a real job from its events: volunteers present from `connected` to
 * `disconnected`, training from `leased` to their unit's `accepted` (merged) or `rejected`;
 * a lease that ended otherwise (expired, handed back, still out at `endMs`) was wasted.
 */
export function timelineOfEvents(events: readonly EventRow[], endMs: number): Timeline {
  const timeline: Timeline = { present: new Map(), busy: new Map() };
  const leases = new Map<string, Lease>();
  const add = (worker: string, from: number, to: number, merged: boolean) =>
    timeline.busy.set(worker, [...(timeline.busy.get(worker) ?? []), { span: [from, to], merged }]);
  const close = (unit: string, at: number, merged: boolean) => {
    const lease = leases.get(unit);
    if (lease === undefined) return;
    leases.delete(unit);
    add(lease.worker, lease.from, at, merged);
  };
  for (const { kind, atMs, data } of events) {
    const d = (data ?? {}) as { worker?: string; unit?: string };
    if (kind === 'connected' && d.worker !== undefined) {
      const seen = timeline.present.get(d.worker);
      timeline.present.set(d.worker, [seen?.[0] ?? atMs, Infinity]);
    } else if (kind === 'disconnected' && d.worker !== undefined) {
      const seen = timeline.present.get(d.worker);
      if (seen !== undefined) timeline.present.set(d.worker, [seen[0], atMs]);
    } else if (kind === 'leased' && d.unit !== undefined && d.worker !== undefined) {
      close(d.unit, atMs, false);
      leases.set(d.unit, { worker: d.worker, from: atMs });
    } else if ((kind === 'accepted' || kind === 'rejected') && d.unit !== undefined)
      close(d.unit, atMs, kind === 'accepted');
  }
  for (const [unit] of leases) close(unit, endMs, false);
  return timeline;
}
