/**
 * How many frames a worker socket may still send: a token bucket that holds `burst` frames
 * and refills at `perSecond`. A frame over budget costs one subtraction, no parse.
 */
import type { Clock } from '../../shared/clock.ts';
import type { ServerLimits } from './limits.ts';

/** An honest worker's busiest second is its own heartbeats plus its no_work retries; allow this many times that. */
const HONEST_HEADROOM = 4;

/**
 * The sustained frame rate a socket is allowed: the configured limit, or more when the job's
 * heartbeat and retry hints (which honest workers follow) ask for more than a quarter of it.
 */
export const framesPerSecondFor = (
  limits: Pick<ServerLimits, 'maxFramesPerSecond'>,
  heartbeatMs: number,
  retryAfterMs: number,
): number =>
  Math.max(limits.maxFramesPerSecond, HONEST_HEADROOM * (1000 / heartbeatMs + 1000 / retryAfterMs));

export class FrameBudget {
  private frames: number;
  private refilledMs: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly clock: Clock,
  ) {
    this.frames = burst;
    this.refilledMs = clock.now();
  }

  /** Spends one frame; false when the budget is spent (the frame must not be handled). */
  take(): boolean {
    const now = this.clock.now();
    this.frames = Math.min(
      this.burst,
      this.frames + (Math.max(0, now - this.refilledMs) * this.perSecond) / 1000,
    );
    this.refilledMs = now;
    if (this.frames < 1) return false;
    this.frames -= 1;
    return true;
  }
}
