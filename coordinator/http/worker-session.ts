/** One worker's control socket once it is open: its frames, within their budget, turned into calls on the core. */
import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import { ProtocolError } from '../../proto/errors.ts';
import type { CoordinatorMessage, WorkerMessage } from '../../proto/messages.ts';
import { parseWorkerMessage } from '../../proto/parse.ts';
import { systemClock } from '../../shared/clock.ts';
import type { CoordinatorCore } from '../core/coordinator-core.ts';
import type { Identity } from '../core/identity.ts';
import { FrameBudget } from './frame-budget.ts';
import type { ServerLimits } from './limits.ts';

export const MAX_FRAME_BYTES = 64 * 1024;

export interface SessionOptions {
  readonly core: CoordinatorCore;
  readonly log: Logger;
  readonly heartbeatMs: number;
  readonly retryAfterMs: number;
  readonly maxResultBytes: number;
  /** The sustained frame rate allowed (see framesPerSecondFor). */
  readonly framesPerSecond: number;
  readonly limits: Pick<ServerLimits, 'helloTimeoutMs' | 'frameBurst'>;
}

/** A browser tab closing (or navigating away) closes its sockets with this code. */
const GOING_AWAY = 1001;
/** No close frame: the peer's process died or its link dropped (RFC 6455 §7.1.5). */
const ABNORMAL_CLOSURE = 1006;
/** How long a socket cut off for talking past its close has to read why before it is dropped. */
const CUT_OFF_GRACE_MS = 1_000;

export function send(ws: WebSocket, message: CoordinatorMessage): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
}

export function fail(ws: WebSocket, error: ProtocolError): void {
  send(ws, { type: 'error', ...error.toWire(), message: error.message.slice(0, 1024) });
  ws.close(error.spec.wsClose ?? 4000, error.code);
}

/** One worker's socket: hello first, then work requests, heartbeats and hand-backs, all via the core. */
export function attachSession(
  ws: WebSocket,
  identity: Identity,
  options: SessionOptions,
  byWorker: Map<string, WebSocket>,
): void {
  const { core, log, framesPerSecond } = options;
  const { frameBurst } = options.limits;
  // Transport time (as the idle timeout): the job's clock may stand still in tests.
  const budget = new FrameBudget(framesPerSecond, frameBurst, systemClock);
  let unheard = 0;
  let workerId: string | undefined;
  const helloDeadline = setTimeout(
    () => fail(ws, new ProtocolError('BAD_MESSAGE', `no hello within ${options.limits.helloTimeoutMs} ms`)),
    options.limits.helloTimeoutMs,
  );

  const handle = (message: WorkerMessage): void => {
    if (message.type === 'hello') {
      if (workerId !== undefined) throw new ProtocolError('BAD_MESSAGE', 'hello was already sent');
      clearTimeout(helloDeadline);
      workerId = core.connect(message, identity).id;
      byWorker.set(workerId, ws);
      send(ws, {
        type: 'welcome',
        worker_id: workerId,
        heartbeat_ms: options.heartbeatMs,
        limits: { max_result_bytes: options.maxResultBytes, max_frame_bytes: MAX_FRAME_BYTES },
      });
      return;
    }
    if (workerId === undefined) throw new ProtocolError('BAD_MESSAGE', `${message.type} before hello`);
    switch (message.type) {
      case 'request_work':
        send(ws, core.assign(workerId, message.cached_shards ?? []));
        return;
      case 'heartbeat':
        if (!core.heartbeat(workerId, message))
          send(ws, {
            type: 'cancel',
            unit_id: message.unit_id,
            reason: 'lease lost (expired or reassigned)',
          });
        return;
      case 'release':
        core.release(workerId, message);
        return;
    }
  };

  ws.on('message', (raw: RawData, isBinary: boolean) => {
    // A socket already failed answers nothing more (no lease goes to a closing socket); one
    // that keeps sending after it was told to close is read no more, then dropped.
    if (ws.readyState !== ws.OPEN) {
      if (++unheard === frameBurst) {
        ws.pause();
        setTimeout(() => ws.terminate(), CUT_OFF_GRACE_MS).unref();
      }
      return;
    }
    if (!budget.take()) {
      log.warn({ worker: workerId, framesPerSecond, frameBurst }, 'worker socket over its frame rate');
      fail(
        ws,
        new ProtocolError(
          'RATE_LIMITED',
          `more than ${Math.round(framesPerSecond)} frames a second (bursts of ${frameBurst}): socket closed`,
        ),
      );
      return;
    }
    try {
      if (isBinary) throw new ProtocolError('BAD_MESSAGE', 'binary frames are not part of the protocol');
      handle(parseWorkerMessage(raw as Buffer, MAX_FRAME_BYTES));
    } catch (error) {
      const protocolError =
        error instanceof ProtocolError ? error : new ProtocolError('INTERNAL', (error as Error).message);
      log.warn(
        { worker: workerId, code: protocolError.code, err: protocolError.message },
        'bad worker message',
      );
      fail(ws, protocolError);
    }
  });
  ws.on('error', (error) => log.warn({ worker: workerId, err: error.message }, 'worker socket error'));
  ws.on('close', (code) => {
    clearTimeout(helloDeadline);
    if (workerId === undefined) return;
    byWorker.delete(workerId);
    core.disconnect(workerId, code === GOING_AWAY, code !== ABNORMAL_CLOSURE);
  });
}
