/** Virtual-time events, run in time order (ties in the order they were scheduled). */
export interface SimulationEvent {
  readonly atMs: number;
  readonly seq: number;
  readonly run: () => void | Promise<void>;
}

export class EventQueue {
  private readonly events: SimulationEvent[] = [];
  private seq = 0;

  at(atMs: number, run: () => void | Promise<void>): void {
    const event = { atMs, seq: this.seq++, run };
    let lo = 0;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const other = this.events[mid]!;
      if (other.atMs < atMs || (other.atMs === atMs && other.seq < event.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.events.splice(lo, 0, event);
  }

  next(): SimulationEvent | undefined {
    return this.events.shift();
  }

  get size(): number {
    return this.events.length;
  }
}
