import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { type WebSocket, WebSocketServer } from 'ws';
import { ProtocolError } from '../../proto/errors.ts';
import { ROUTES } from '../../proto/routes.ts';
import { bearerOf } from './auth.ts';
import { SOCKET_PROTOCOL, tokenFromProtocols } from '../../proto/socket-token.ts';
import type { ServerLimits } from './limits.ts';
import { SocketAdmission } from './socket-admission.ts';
import type { AuthFailures } from './auth-failures.ts';
import { framesPerSecondFor } from './frame-budget.ts';
import { MAX_FRAME_BYTES, type SessionOptions, attachSession, fail, send } from './worker-session.ts';

export { MAX_FRAME_BYTES } from './worker-session.ts';

export interface WorkerSocketOptions extends Omit<SessionOptions, 'framesPerSecond' | 'limits'> {
  /** Addresses refused for failing to authenticate too often (shared with the HTTP routes). */
  readonly authFailures: AuthFailures;
  readonly limits: SessionOptions['limits'] &
    Pick<
      ServerLimits,
      | 'pingIntervalMs'
      | 'idleTimeoutMs'
      | 'maxConnectionsPerIp'
      | 'maxSocketsPerToken'
      | 'maxConnectsPerIpPerMinute'
      | 'maxFramesPerSecond'
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

/** When each socket last sent a frame (for the idle timeout). */
const lastFrame = new WeakMap<WebSocket, number>();

/** The control WebSocket on the app's own port (noServer), authenticated on upgrade. */
export function attachWorkerSockets(app: FastifyInstance, options: WorkerSocketOptions): WorkerSockets {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_FRAME_BYTES,
    handleProtocols: (offered) => (offered.has(SOCKET_PROTOCOL) ? SOCKET_PROTOCOL : false),
  });
  const emptied = new Set<() => void>();
  const admission = new SocketAdmission(options.limits);
  const framesPerSecond = framesPerSecondFor(options.limits, options.heartbeatMs, options.retryAfterMs);
  const alive = new WeakSet<WebSocket>();
  wss.on('connection', (ws: WebSocket) => {
    alive.add(ws);
    lastFrame.set(ws, Date.now());
    ws.on('message', () => lastFrame.set(ws, Date.now()));
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
      attachSession(ws, identity, { ...options, framesPerSecond }, byWorker);
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
