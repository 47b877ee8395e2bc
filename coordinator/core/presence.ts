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

/** The workers connected right now, with their measured speed and the time of their last message. */
export class Presence {
  private readonly workers = new Map<string, ConnectedWorker>();
  private emptySince: number | undefined;

  /** `now`: when the coordinator started, which is when it began to have no volunteer. */
  constructor(now: number) {
    this.emptySince = now;
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
    this.emptySince = undefined;
    return worker;
  }

  seen(id: string, now: number): void {
    const worker = this.workers.get(id);
    if (worker !== undefined) worker.lastSeenMs = now;
  }

  leave(id: string, now: number): ConnectedWorker | undefined {
    const worker = this.workers.get(id);
    this.workers.delete(id);
    if (this.workers.size === 0) this.emptySince ??= now;
    return worker;
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
