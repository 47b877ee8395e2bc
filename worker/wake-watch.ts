/**
 * A laptop that goes to sleep mid-unit stops the worker between two training steps with no
 * warning. On waking, the gap shows on the wall clock (the monotonic clock does not count
 * the sleep), and the unit is handed in at once as a partial result: credited if its lease
 * is still held, and the shard does not wait on a machine that may sleep again.
 */
import type { Pacing } from './volunteer-ports.ts';

/** No training step takes this long: a longer gap between two is a sleep (or a stopped process). */
export const SLEPT_AFTER_MS = 20_000;

export class WakeWatch implements Pacing {
  private lastStepEnd: number | undefined;
  private woke = false;

  constructor(
    private readonly inner: Pacing | undefined,
    private readonly wallNow: () => number,
    private readonly onWake: (sleptMs: number) => void,
    private readonly sleptAfterMs = SLEPT_AFTER_MS,
  ) {}

  get handIn(): boolean {
    return this.woke || this.inner?.handIn === true;
  }

  async betweenSteps(): Promise<void> {
    const now = this.wallNow();
    // Measured over the step alone: the inner pacing's rests are not sleeps.
    if (this.lastStepEnd !== undefined && now - this.lastStepEnd >= this.sleptAfterMs && !this.woke) {
      this.woke = true;
      this.onWake(now - this.lastStepEnd);
    }
    await this.inner?.betweenSteps();
    this.lastStepEnd = this.wallNow();
  }

  async beforeWork(signal?: AbortSignal): Promise<void> {
    this.woke = false;
    this.lastStepEnd = undefined;
    await this.inner?.beforeWork(signal);
    this.lastStepEnd = undefined;
  }
}
