import type { CoordinatorMessage } from '../proto/messages.ts';

/**
 * What the coordinator said, for the volunteer loop: `cancel` goes to a listener at once
 * (training is running then), every other message waits for `next()`; after `fail`, every
 * `next()` rejects with the first error. The job's end (`no_work` with `done`, which the
 * coordinator sends every socket when the job finishes) is also remembered in `jobDone`, so
 * that a socket the coordinator closes soon after cannot lose it.
 */
export class CoordinatorInbox {
  private readonly queue: CoordinatorMessage[] = [];
  private waiter: { resolve: (m: CoordinatorMessage) => void; reject: (e: Error) => void } | undefined;
  private closed: Error | undefined;
  onCancel: (unitId: string, reason: string) => void = () => undefined;
  jobDone = false;

  deliver(message: CoordinatorMessage): void {
    if (message.type === 'no_work' && message.done === true) this.jobDone = true;
    if (message.type === 'cancel') this.onCancel(message.unit_id, message.reason);
    else if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve(message);
    } else this.queue.push(message);
  }

  next(): Promise<CoordinatorMessage> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  fail(error: Error): void {
    this.closed ??= error;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(this.closed);
  }
}
