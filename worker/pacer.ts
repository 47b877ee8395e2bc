/**
 * What a volunteer gives, and when: `--max-cpu` keeps the process to a share of one core by
 * resting after each stretch of steps until its CPU time over the stretch is that share; `--idle-only` trains only while
 * the rest of the machine is idle, pauses within a second or two of it being used, and
 * hands the unit in as a partial result (credited, the rest of its window cut as a new
 * unit) when the pause lasts, so that no shard waits on a busy machine.
 */
import type { Pacing } from './volunteer-ports.ts';

export interface PacerClock {
  now(): number;
  sleep(ms: number): Promise<void>;
  /** CPU time this process has used, all its threads, in ms. */
  cpu(): number;
}

/** The share of the machine's CPU time used by other processes since the last call, 0 to 1. */
export type OthersLoad = () => number;

export interface PacerOptions {
  /** Share of one core training may use, in (0, 1]. */
  readonly maxCpu?: number;
  readonly idleOnly?: boolean;
  /** Others' share of the machine above which it counts as in use. */
  readonly busyShare?: number;
  /** How long the machine must be idle before training starts again. */
  readonly idleForMs?: number;
  /** A unit paused this long is handed in. */
  readonly handInAfterMs?: number;
  /** Told when training pauses for the machine's owner, and when it resumes. */
  readonly onPause?: (paused: boolean) => void;
}

/** Training runs this long between rests, so a rest is long enough to matter to the OS. */
const STRETCH_MS = 100;
/** How often the machine's load is looked at. */
const SAMPLE_MS = 1000;

export class Pacer implements Pacing {
  handIn = false;
  private stretchStart: number;
  private stretchCpu: number;
  private lastSample: number;
  private maxCpu: number;
  private readonly busyShare: number;
  private readonly idleForMs: number;
  private readonly handInAfterMs: number;

  constructor(
    private readonly clock: PacerClock,
    private readonly othersLoad: OthersLoad,
    private readonly options: PacerOptions = {},
  ) {
    this.maxCpu = 1;
    this.limit(options.maxCpu ?? 1);
    this.busyShare = options.busyShare ?? 0.25;
    this.idleForMs = options.idleForMs ?? 5_000;
    this.handInAfterMs = options.handInAfterMs ?? 30_000;
    this.stretchStart = clock.now();
    this.stretchCpu = clock.cpu();
    this.lastSample = clock.now();
  }

  private startStretch(): void {
    this.stretchStart = this.clock.now();
    this.stretchCpu = this.clock.cpu();
  }

  /** A new share of one core, from the next stretch on (the tab's control). */
  limit(maxCpu: number): void {
    this.maxCpu = Math.min(1, Math.max(0.01, maxCpu));
  }

  async betweenSteps(): Promise<void> {
    const now = this.clock.now();
    const elapsed = now - this.stretchStart;
    if (this.maxCpu < 1 && elapsed >= STRETCH_MS) {
      const rest = (this.clock.cpu() - this.stretchCpu) / this.maxCpu - elapsed;
      if (rest > 0) await this.clock.sleep(rest);
      this.startStretch();
    }
    if (this.options.idleOnly === true && now - this.lastSample >= SAMPLE_MS) {
      this.lastSample = now;
      if (this.othersLoad() > this.busyShare) await this.waitForIdle(true);
    }
  }

  async beforeWork(signal?: AbortSignal): Promise<void> {
    this.handIn = false;
    if (this.options.idleOnly === true) {
      this.othersLoad();
      await this.clock.sleep(SAMPLE_MS);
      if (this.othersLoad() > this.busyShare) await this.waitForIdle(false, signal);
    }
    this.startStretch();
    this.lastSample = this.clock.now();
  }

  /** Until the machine has been idle for `idleForMs`; mid-unit, at most `handInAfterMs`. */
  private async waitForIdle(midUnit: boolean, signal?: AbortSignal): Promise<void> {
    this.options.onPause?.(true);
    const pausedAt = this.clock.now();
    let idleSince: number | undefined;
    while (signal?.aborted !== true) {
      if (midUnit && this.clock.now() - pausedAt >= this.handInAfterMs) {
        this.handIn = true;
        break;
      }
      await this.clock.sleep(SAMPLE_MS);
      const now = this.clock.now();
      if (this.othersLoad() > this.busyShare) idleSince = undefined;
      else if ((idleSince ??= now) !== undefined && now - idleSince >= this.idleForMs) break;
    }
    this.options.onPause?.(false);
    this.startStretch();
    this.lastSample = this.clock.now();
  }
}
