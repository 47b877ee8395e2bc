import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import { ProtocolError } from '../proto/errors.ts';
import type { CoordinatorMessage, Hello, WorkerMessage } from '../proto/messages.ts';
import { parseWorkerMessage } from '../proto/parse.ts';
import type { Scheduler } from './scheduler.ts';
import type { Store } from './store/store.ts';

export const MAX_FRAME_BYTES = 64 * 1024;

export interface SessionDeps {
  readonly scheduler: Scheduler;
  readonly store: Store;
  readonly log: Logger;
  readonly now: () => number;
  readonly heartbeatMs: number;
  readonly maxResultBytes: number;
  /** Ids of workers connected right now (shared by all sessions). */
  readonly connected: Map<string, WebSocket>;
  /** Measured training speed (samples/s) of each connected worker, for the dashboard. */
  readonly speeds: Map<string, number>;
}

/** A volunteer keeps its id (and its credit) across reconnects: derived from name and token. */
export function workerIdFor(hello: Hello): string {
  const digest = createHash('sha256')
    .update(`${hello.name}\0${hello.token ?? ''}`)
    .digest('hex');
  return `w-${digest.slice(0, 12)}`;
}

export function send(ws: WebSocket, message: CoordinatorMessage): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
}

function fail(ws: WebSocket, error: ProtocolError): void {
  send(ws, { type: 'error', ...error.toWire(), message: error.message.slice(0, 1024) });
  ws.close(error.spec.wsClose ?? 4000, error.code);
}

/** One worker's WebSocket: hello first, then work requests, heartbeats and hand-backs. */
export function attachWorkerSession(ws: WebSocket, deps: SessionDeps): void {
  const { scheduler, store, log, now, connected } = deps;
  let workerId: string | undefined;

  const onHello = (hello: Hello): void => {
    let id = workerIdFor(hello);
    for (let n = 2; connected.has(id); n++) id = `${workerIdFor(hello)}-${n}`;
    workerId = id;
    connected.set(id, ws);
    deps.speeds.set(id, hello.capabilities.samples_per_s);
    store.upsertWorker({
      id,
      name: hello.name,
      tokenHash: '',
      backend: hello.capabilities.backend,
      lastSeenMs: now(),
    });
    store.appendEvent('connected', { worker: id, name: hello.name, capabilities: hello.capabilities }, now());
    log.info({ worker: id, name: hello.name, ...hello.capabilities }, 'worker connected');
    send(ws, {
      type: 'welcome',
      worker_id: id,
      heartbeat_ms: deps.heartbeatMs,
      limits: { max_result_bytes: deps.maxResultBytes, max_frame_bytes: MAX_FRAME_BYTES },
    });
  };

  const handle = (message: WorkerMessage): void => {
    if (message.type === 'hello') {
      if (workerId !== undefined) throw new ProtocolError('BAD_MESSAGE', 'hello was already sent');
      onHello(message);
      return;
    }
    if (workerId === undefined) throw new ProtocolError('BAD_MESSAGE', `${message.type} before hello`);
    switch (message.type) {
      case 'request_work':
        send(ws, scheduler.assign(workerId));
        return;
      case 'progress':
        if (!scheduler.heartbeat(workerId, message))
          send(ws, {
            type: 'cancel',
            unit_id: message.unit_id,
            reason: 'lease lost (expired or reassigned)',
          });
        return;
      case 'release':
        scheduler.release(workerId, message);
        return;
    }
  };

  ws.on('message', (raw: RawData, isBinary: boolean) => {
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
  ws.on('error', (error) => {
    log.warn({ worker: workerId, err: error.message }, 'worker socket error');
  });
  ws.on('close', () => {
    if (workerId === undefined) return;
    if (connected.get(workerId) === ws) {
      connected.delete(workerId);
      deps.speeds.delete(workerId);
    }
    store.appendEvent('disconnected', { worker: workerId }, now());
    log.info({ worker: workerId }, 'worker disconnected');
  });
}
