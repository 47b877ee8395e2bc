import { createHash } from 'node:crypto';
import type { Hello } from '../../proto/messages.ts';

export interface ConnectedWorker {
  readonly id: string;
  readonly name: string;
  readonly samplesPerSecond: number;
  readonly connectedMs: number;
  /** The volunteer token it came with, if any. */
  readonly tokenId?: string;
  lastSeenMs: number;
}

/** A volunteer keeps its id (and its credit) across reconnects: derived from name and token. */
export function workerIdFor(hello: Hello): string {
  const digest = createHash('sha256')
    .update(`${hello.name}\0${hello.token ?? ''}`)
    .digest('hex');
  return `w-${digest.slice(0, 12)}`;
}

/** A volunteer's id without the `-2`, `-3` a second connection of the same volunteer gets. */
export const volunteerOf = (workerId: string): string => workerId.split('-').slice(0, 2).join('-');

/** The workers connected right now, with their measured speed and the time of their last message. */
export class Presence {
  private readonly workers = new Map<string, ConnectedWorker>();
  /** Volunteers whose last socket here was closed on purpose, not lost: none is coming back. */
  private readonly departed = new Set<string>();
  private emptySince: number | undefined;

  /** `sinceMs`: when the coordinator started, which is when it began to have no volunteer. */
  constructor(readonly sinceMs: number) {
    this.emptySince = sinceMs;
  }

  /** Since when no volunteer has been connected (undefined while one is). */
  get emptySinceMs(): number | undefined {
    return this.emptySince;
  }

  /**
   * A fresh id for this connection: `owned` when the token fixes it, else derived from the
   * name; a second connection with the same id gets a suffix.
   */
  join(hello: Hello, now: number, owned?: { id: string; tokenId: string }): ConnectedWorker {
    const base = owned?.id ?? workerIdFor(hello);
    let id = base;
    for (let n = 2; this.workers.has(id); n++) id = `${base}-${n}`;
    const worker = {
      id,
      name: hello.name,
      samplesPerSecond: hello.capabilities.samples_per_s,
      connectedMs: now,
      lastSeenMs: now,
      ...(owned !== undefined ? { tokenId: owned.tokenId } : {}),
    };
    this.workers.set(id, worker);
    this.departed.delete(volunteerOf(id));
    this.emptySince = undefined;
    return worker;
  }

  seen(id: string, now: number): void {
    const worker = this.workers.get(id);
    if (worker !== undefined) worker.lastSeenMs = now;
  }

  /** `onPurpose`: the socket was closed, not lost (its process did not die, its link did not drop). */
  leave(id: string, now: number, onPurpose = false): ConnectedWorker | undefined {
    const worker = this.workers.get(id);
    this.workers.delete(id);
    if (worker !== undefined && onPurpose) this.departed.add(volunteerOf(id));
    if (this.workers.size === 0) this.emptySince ??= now;
    return worker;
  }

  /** Connected now, or last left on purpose: either way, none to wait for (a test per volunteer). */
  accountedFor(): (volunteer: string) => boolean {
    const connected = new Set([...this.workers.keys()].map(volunteerOf));
    return (volunteer) => connected.has(volunteer) || this.departed.has(volunteer);
  }

  get(id: string): ConnectedWorker | undefined {
    return this.workers.get(id);
  }

  all(): ConnectedWorker[] {
    return [...this.workers.values()];
  }

  get size(): number {
    return this.workers.size;
  }
}
