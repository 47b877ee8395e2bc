import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import { ProtocolError } from '../../proto/errors.ts';
import type { CoordinatorMessage, WorkerMessage } from '../../proto/messages.ts';
import { parseWorkerMessage } from '../../proto/parse.ts';
import { ROUTES } from '../../proto/routes.ts';
import type { CoordinatorCore } from '../core/coordinator-core.ts';
import type { Identity } from '../core/identity.ts';
import { bearerOf } from './auth.ts';
import { SOCKET_PROTOCOL, tokenFromProtocols } from '../../proto/socket-token.ts';
import type { ServerLimits } from './limits.ts';
import { SocketAdmission } from './socket-admission.ts';
import type { AuthFailures } from './auth-failures.ts';

export const MAX_FRAME_BYTES = 64 * 1024;

export interface WorkerSocketOptions {
  readonly core: CoordinatorCore;
  readonly log: Logger;
  readonly heartbeatMs: number;
  readonly retryAfterMs: number;
  readonly maxResultBytes: number;
  /** Addresses refused for failing to authenticate too often (shared with the HTTP routes). */
  readonly authFailures: AuthFailures;
  readonly limits: Pick<
    ServerLimits,
    | 'helloTimeoutMs'
    | 'pingIntervalMs'
    | 'idleTimeoutMs'
    | 'maxConnectionsPerIp'
    | 'maxSocketsPerToken'
    | 'maxConnectsPerIpPerMinute'
  >;
}

/** The open worker sockets, so that the job's end reaches them all and close() can wait for them. */
export interface WorkerSockets {
  readonly count: number;
  /** Resolves once no socket is open, or after `timeoutMs`. */
  drained(timeoutMs: number): Promise<void>;
  /** Closes every socket and the server; resolves when they are gone. */
  close(): Promise<void>;
}

function send(ws: WebSocket, message: CoordinatorMessage): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
}

function fail(ws: WebSocket, error: ProtocolError): void {
  send(ws, { type: 'error', ...error.toWire(), message: error.message.slice(0, 1024) });
  ws.close(error.spec.wsClose ?? 4000, error.code);
}

/** When each socket last sent a frame (for the idle timeout). */
const lastFrame = new WeakMap<WebSocket, number>();

/** One worker's socket: hello first, then work requests, heartbeats and hand-backs, all via the core. */
function attachSession(
  ws: WebSocket,
  identity: Identity,
  options: WorkerSocketOptions,
  byWorker: Map<string, WebSocket>,
): void {
  const { core, log } = options;
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
    lastFrame.set(ws, Date.now());
    // A socket already failed answers nothing more (no lease goes to a closing socket).
    if (ws.readyState !== ws.OPEN) return;
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
    core.disconnect(workerId, code === GOING_AWAY);
  });
}

/** A browser tab closing (or navigating away) closes its sockets with this code. */
const GOING_AWAY = 1001;

/** The control WebSocket on the app's own port (noServer), authenticated on upgrade. */
export function attachWorkerSockets(app: FastifyInstance, options: WorkerSocketOptions): WorkerSockets {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_FRAME_BYTES,
    handleProtocols: (offered) => (offered.has(SOCKET_PROTOCOL) ? SOCKET_PROTOCOL : false),
  });
  const emptied = new Set<() => void>();
  const admission = new SocketAdmission(options.limits);
  const alive = new WeakSet<WebSocket>();
  wss.on('connection', (ws: WebSocket) => {
    alive.add(ws);
    lastFrame.set(ws, Date.now());
    ws.on('pong', () => alive.add(ws));
    ws.once('close', () => {
      if (wss.clients.size === 0) for (const resolve of emptied) resolve();
    });
  });
  // A peer that has not answered the last ping is gone (ws README: broken connections).
  const pinger = setInterval(() => {
    const now = Date.now();
    for (const ws of wss.clients) {
      const idleMs = now - (lastFrame.get(ws) ?? now);
      if (idleMs > options.limits.idleTimeoutMs) {
        fail(
          ws,
          new ProtocolError(
            'BAD_MESSAGE',
            `no message for ${Math.round(idleMs / 1000)} s: idle socket closed`,
          ),
        );
        continue;
      }
      if (!alive.has(ws)) {
        ws.terminate();
        continue;
      }
      alive.delete(ws);
      ws.ping();
    }
  }, options.limits.pingIntervalMs);
  pinger.unref();
  const byWorker = new Map<string, WebSocket>();
  options.core.listen({
    finished: () => {
      for (const ws of wss.clients)
        send(ws, { type: 'no_work', retry_after_ms: options.retryAfterMs, done: true });
    },
    cancelUnit: (workerId, unitId, reason) => {
      const ws = byWorker.get(workerId);
      if (ws !== undefined) send(ws, { type: 'cancel', unit_id: unitId, reason });
    },
    dropWorker: (workerId, reason) => {
      const ws = byWorker.get(workerId);
      if (ws !== undefined) fail(ws, new ProtocolError('UNAUTHORIZED', reason));
    },
  });

  app.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const refuse = (status: string): void => {
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if ((request.url ?? '').split('?')[0] !== ROUTES.workerSocket) return refuse('404 Not Found');
    const ip = request.socket.remoteAddress ?? '';
    if (options.authFailures.bannedFor(ip) > 0) return refuse('429 Too Many Requests');
    const identity = options.core.identify(
      bearerOf(request.headers) ?? tokenFromProtocols(request.headers['sec-websocket-protocol']),
    );
    if (identity === undefined) {
      options.authFailures.failed(ip);
      options.log.warn({ remote: ip }, 'worker refused: bad or missing token');
      return refuse('401 Unauthorized');
    }
    const token = identity.kind === 'volunteer' ? identity.tokenId : undefined;
    const refused = admission.refusal(ip, token);
    if (refused !== undefined) {
      options.log.warn({ remote: ip, ...(token ? { token } : {}) }, `worker refused: ${refused}`);
      return refuse('429 Too Many Requests');
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      admission.opened(ws, ip, token);
      wss.emit('connection', ws, request);
      attachSession(ws, identity, options, byWorker);
    });
  });

  const drained = (timeoutMs: number): Promise<void> => {
    if (wss.clients.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        emptied.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      emptied.add(done);
    });
  };

  return {
    get count() {
      return wss.clients.size;
    },
    drained,
    async close() {
      clearInterval(pinger);
      const gone = drained(5_000);
      for (const ws of wss.clients) ws.terminate();
      await gone;
      wss.close();
    },
  };
}
