/**
 * The job's end reaches a volunteer even when the coordinator closes its socket right after
 * saying so (it exits with --exit-when-done): the volunteer finishes instead of reconnecting
 * to a coordinator that is gone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CoordinatorMessage, WorkerMessage } from '../../proto/messages.ts';
import { CoordinatorInbox } from '../../worker/coordinator-inbox.ts';
import { runVolunteer } from '../../worker/volunteer-loop.ts';
import type { ControlSocket, VolunteerLog } from '../../worker/volunteer-ports.ts';

const quiet: VolunteerLog = { info: () => undefined, warn: () => undefined, child: () => quiet };

/** A socket on which the coordinator answers hello, then `onWork` decides what follows. */
class ScriptedSocket extends CoordinatorInbox implements ControlSocket {
  private closedForSend = false;
  constructor(private readonly onWork: (socket: ScriptedSocket) => void) {
    super();
  }

  send(message: WorkerMessage): void {
    if (this.closedForSend) throw new Error('socket closed');
    if (message.type === 'hello')
      this.deliver({
        type: 'welcome',
        worker_id: 'w-1',
        heartbeat_ms: 1000,
        limits: { max_frame_bytes: 65536, max_result_bytes: 1 << 20 },
      } as CoordinatorMessage);
    else if (message.type === 'request_work') this.onWork(this);
  }

  /** The coordinator says the job is done and closes the socket at once. */
  endAndClose(): void {
    this.deliver({ type: 'no_work', retry_after_ms: 10, done: true });
    this.closedForSend = true;
    this.fail(new Error('socket closed'));
  }

  close(): void {
    this.closedForSend = true;
  }
}

async function volunteer(
  onWork: (socket: ScriptedSocket) => void,
): Promise<{ end: string; connects: number }> {
  let connects = 0;
  const summary = await runVolunteer({
    url: 'ws://127.0.0.1:9',
    name: 'v',
    backend: 'wasm',
    gpu: false,
    threads: 1,
    samplesPerSecond: 1000,
    log: quiet,
    blobs: { get: () => Promise.reject(new Error('no blobs here')), holds: () => false },
    reconnect: { initialMs: 1, maxMs: 2 },
    connect: () => {
      connects++;
      if (connects > 1) return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:9'));
      return Promise.resolve(new ScriptedSocket(onWork));
    },
  });
  return { end: summary.end, connects };
}

void describe('the end of the job reaches a volunteer', { timeout: 10_000 }, () => {
  void it('while it waits out a no_work: it finishes, and does not reconnect', async () => {
    const outcome = await volunteer((socket) => {
      socket.deliver({ type: 'no_work', retry_after_ms: 20 });
      setImmediate(() => socket.endAndClose());
    });
    assert.deepEqual(outcome, { end: 'done', connects: 1 });
  });

  void it('while it waits for an answer: it finishes at once', async () => {
    const outcome = await volunteer((socket) => setImmediate(() => socket.endAndClose()));
    assert.deepEqual(outcome, { end: 'done', connects: 1 });
  });
});
