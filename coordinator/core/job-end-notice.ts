import { volunteerOf } from './presence.ts';

/**
 * How long after losing it the coordinator waits for a volunteer to come back: a live one
 * retries at most every 30 s (worker/volunteer-loop.ts), so one still away after this is gone.
 */
export const RECONNECT_PATIENCE_MS = 35_000;

/**
 * Who has yet to hear that the job ended. A volunteer between two connections when the job
 * ends (in its reconnect backoff, or restarting) would otherwise retry forever against a
 * coordinator that exits once done: so the coordinator lingers until every volunteer it lost
 * lately has connected again and been told, or has stayed away too long to be alive.
 */
export class JobEndNotice {
  /** Volunteer → until when it is waited for. */
  private readonly unheard = new Map<string, number>();

  /**
   * `seen`: every volunteer the store knows, with when it was last seen; `accountedFor`:
   * those that hear the end on their socket or left on purpose; `sinceMs`: when this
   * coordinator started (a volunteer lost before then was lost by its predecessor, and is
   * counted as lost at the start).
   */
  constructor(
    endedMs: number,
    seen: readonly { readonly id: string; readonly lastSeenMs: number }[],
    accountedFor: (volunteer: string) => boolean,
    sinceMs: number,
  ) {
    for (const worker of seen) {
      const volunteer = volunteerOf(worker.id);
      const until = Math.max(worker.lastSeenMs, sinceMs) + RECONNECT_PATIENCE_MS;
      if (until > endedMs && !accountedFor(volunteer))
        this.unheard.set(volunteer, Math.max(until, this.unheard.get(volunteer) ?? 0));
    }
  }

  /** A volunteer connected after the end: it is told on its first request. */
  heard(workerId: string): void {
    this.unheard.delete(volunteerOf(workerId));
  }

  /** How many volunteers are still worth waiting for at `nowMs`. */
  waitingFor(nowMs: number): number {
    let count = 0;
    for (const until of this.unheard.values()) if (until > nowMs) count++;
    return count;
  }
}
