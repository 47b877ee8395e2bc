/**
 * The end of every wait on spawned workers: a local cluster (`arbor demo`, `arbor bench
 * distributed`) fails with a one-line reason when all of its workers have exited before the
 * job is done, or when none of them has sent a result for too long, instead of waiting forever.
 */

export interface WatchedWorker {
  readonly name: string;
  /** null while the process runs. */
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  /** The last lines it wrote to stderr, newest last. */
  readonly lastWords: readonly string[];
}

export interface ClusterState {
  readonly phase: 'pretraining' | 'routing' | 'training' | 'done';
  /** Results received so far (accepted and rejected): any of them is progress. */
  readonly results: number;
}

export class WorkersStopped extends Error {
  override readonly name = 'WorkersStopped';
  constructor(
    readonly code: 'WORKERS_GONE' | 'NO_PROGRESS',
    message: string,
  ) {
    super(message);
  }
}

/** A worker that exited may be one the job's end just released: allow its done message to land. */
export const EXIT_GRACE_MS = 5_000;

/** No result for this long while training, and the workers are stuck (5 units' time, at least 3 min). */
export const stallLimitMs = (unitSeconds: number): number => Math.max(180_000, 5 * unitSeconds * 1000);

function exitOf(worker: WatchedWorker): string {
  const how = worker.signalCode !== null ? worker.signalCode : `exit ${worker.exitCode}`;
  const said = worker.lastWords.at(-1);
  return `${worker.name} (${how}${said ? `: ${said}` : ''})`;
}

/** Judges, at each `check`, whether the workers can still finish the job. */
export class WorkerWatch {
  private allGoneSince: number | undefined;
  private lastResults = -1;
  private lastProgressMs: number | undefined;

  constructor(
    private readonly workers: () => readonly WatchedWorker[],
    private readonly stallMs: number,
  ) {}

  /** The reason to give up now, or undefined while the job can still end. */
  check(state: ClusterState, now: number): WorkersStopped | undefined {
    if (state.phase === 'done') return undefined;
    const workers = this.workers();
    if (workers.length > 0 && workers.every((w) => w.exitCode !== null || w.signalCode !== null)) {
      this.allGoneSince ??= now;
      if (now - this.allGoneSince >= EXIT_GRACE_MS)
        return new WorkersStopped(
          'WORKERS_GONE',
          `all ${workers.length} workers exited before the job was done: ${workers.map(exitOf).join('; ')}`,
        );
    } else this.allGoneSince = undefined;
    if (state.phase !== 'training') {
      this.lastProgressMs = undefined;
      return undefined;
    }
    if (state.results !== this.lastResults || this.lastProgressMs === undefined) {
      this.lastResults = state.results;
      this.lastProgressMs = now;
      return undefined;
    }
    const idleMs = now - this.lastProgressMs;
    if (idleMs < this.stallMs) return undefined;
    const running = workers.filter((w) => w.exitCode === null && w.signalCode === null).length;
    return new WorkersStopped(
      'NO_PROGRESS',
      `no result from any worker for ${Math.round(idleMs / 1000)} s ` +
        `(${running} of ${workers.length} workers still running): the job cannot end`,
    );
  }
}
