import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { ProtocolError } from '../../proto/errors.ts';
import type { BlobStore } from '../store/blob-store.ts';
import type { CoordinatorCore } from '../core/coordinator-core.ts';
import type { ReadModel } from '../read/read-model.ts';
import { type Clock, systemClock } from '../../shared/clock.ts';
import { AuthFailures } from './auth-failures.ts';
import { adminRoutes } from './admin-routes.ts';
import { blobRoutes } from './blob-routes.ts';
import { enrolRoutes } from './enrol-routes.ts';
import type { ServerLimits } from './limits.ts';
import { dashboardRoutes } from './dashboard.ts';
import { metricsRoutes } from './metrics.ts';
import { resultRoutes } from './result-routes.ts';
import { type PackagedWorker, workerPackageRoutes } from './worker-package-routes.ts';
import { type VolunteerScripts, volunteerRoutes } from './volunteer-routes.ts';
import { type WorkerSockets, attachWorkerSockets } from './worker-socket.ts';

export interface HttpConfig {
  readonly maxResultBytes: number;
  readonly limits: ServerLimits;
  readonly heartbeatMs: number;
  readonly retryAfterMs: number;
  /** How often an event stream looks for new events. */
  readonly eventPollMs: number;
  /** The operator's token for the control endpoints (none: they refuse everyone). */
  readonly adminToken?: string;
  /** When set, the dashboard's data, event stream and /metrics need it (or the admin token). */
  readonly readToken?: string;
  /** Open enrolment: POST /v1/enrol issues volunteer tokens. */
  readonly enrolment?: boolean;
  readonly clock?: Clock;
  /** The volunteer package served at /v1/worker.tgz, built on first use. */
  readonly workerPackage: () => Promise<PackagedWorker>;
  /** The browser volunteer's scripts served under /volunteer, built on first use. */
  readonly volunteerScripts?: () => Promise<VolunteerScripts>;
  readonly log: Logger;
}

export interface HttpParts {
  readonly core: CoordinatorCore;
  readonly read: ReadModel;
  readonly blobs: BlobStore;
}

export interface CoordinatorApp {
  readonly app: FastifyInstance;
  readonly sockets: WorkerSockets;
}

const send = (reply: FastifyReply, error: ProtocolError): FastifyReply =>
  reply.code(error.spec.httpStatus ?? 500).send(error.toWire());

/**
 * Bytes that are not HTTP, headers over Node's limit, a request past its timeout: answered
 * from the catalogue too (with the HTTP status that names the case), then closed.
 */
function answerClientError(error: Error & { code?: string; rawPacket?: unknown }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  // An answer to HEAD has no body, even when the request could not be parsed to the end.
  const head =
    Buffer.isBuffer(error.rawPacket) && error.rawPacket.subarray(0, 5).toString('latin1') === 'HEAD ';
  const [status, reason, problem] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? ([
          408,
          'Request Timeout',
          new ProtocolError('BAD_MESSAGE', 'the request was not received in time'),
        ] as const)
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? ([
            431,
            'Request Header Fields Too Large',
            new ProtocolError('FRAME_TOO_LARGE', 'headers too large'),
          ] as const)
        : ([400, 'Bad Request', new ProtocolError('BAD_MESSAGE', 'not a valid HTTP request')] as const);
  const body = head ? '' : JSON.stringify(problem.toWire());
  if (socket.writable)
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  socket.destroy();
}

/** The coordinator's HTTP and WebSocket surface, not yet listening. Every error is `{code, message, retryable}`. */
export function buildApp({ core, read, blobs }: HttpParts, config: HttpConfig): CoordinatorApp {
  const { log } = config;
  const { requestTimeoutMs } = config.limits;
  const app = Fastify({
    logger: false,
    bodyLimit: 1024 * 1024,
    // Unit ids are up to 128 characters, percent-encoded up to three times as long.
    routerOptions: { maxParamLength: 512 },
    requestTimeout: requestTimeoutMs,
    frameworkErrors: (error, _request, reply) => {
      void send(reply, new ProtocolError('BAD_MESSAGE', error.message));
    },
    clientErrorHandler: answerClientError,
    // Node reads both when the server is made (the property fastify sets afterwards is not
    // enough on Node 20) and checks on this interval (30 s by default).
    http: {
      requestTimeout: requestTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(requestTimeoutMs / 4))),
      requireHostHeader: false,
    },
  });
  // Node would answer an unknown Expect with a bare 417.
  app.server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    const body = JSON.stringify(
      new ProtocolError(
        'BAD_MESSAGE',
        `unsupported expectation ${String(request.headers.expect).slice(0, 60)}`,
      ).toWire(),
    );
    response.writeHead(417, { 'content-type': 'application/json', connection: 'close' }).end(body);
  });

  // Before any route looks at a token: an address that keeps failing is refused unheard.
  const authFailures = new AuthFailures(
    config.limits.maxAuthFailuresPerIpPerMinute,
    config.clock ?? systemClock,
  );
  app.addHook('onRequest', (request, _reply, done) => {
    const waitMs = authFailures.bannedFor(request.ip);
    done(waitMs > 0 ? new ProtocolError('RATE_LIMITED', AuthFailures.reason(waitMs)) : undefined);
  });

  app.setErrorHandler((error, request, reply) => {
    if (error instanceof ProtocolError) {
      if (error.code === 'UNAUTHORIZED') authFailures.failed(request.ip);
      return send(reply, error);
    }
    const err = error as Error & { code?: string; statusCode?: number };
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
      return send(reply, new ProtocolError('FRAME_TOO_LARGE', err.message));
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500)
      return send(reply, new ProtocolError('BAD_MESSAGE', err.message));
    log.error({ err }, 'request failed');
    return send(reply, new ProtocolError('INTERNAL', 'internal error'));
  });
  app.setNotFoundHandler((request, reply) =>
    send(reply, new ProtocolError('NOT_FOUND', `no route ${request.method} ${request.url.slice(0, 120)}`)),
  );

  void app.register(blobRoutes, { blobs, core });
  void app.register(resultRoutes, {
    core,
    standingOf: (workerId) => read.standingOf(workerId),
    maxResultBytes: config.maxResultBytes,
    limits: config.limits,
  });
  const reader = { readToken: config.readToken, adminToken: config.adminToken };
  void app.register(dashboardRoutes, {
    read,
    pollMs: config.eventPollMs,
    streamLimits: config.limits,
    ...reader,
  });
  void app.register(metricsRoutes, { read, core, ...reader });
  void app.register(adminRoutes, { core, adminToken: config.adminToken });
  void app.register(enrolRoutes, {
    core,
    open: config.enrolment === true,
    clock: config.clock ?? systemClock,
    limits: config.limits,
  });
  void app.register(workerPackageRoutes, {
    workerPackage: config.workerPackage,
    tokenRequired: () => core.identify(undefined) === undefined,
    enrolment: config.enrolment === true,
  });
  void app.register(volunteerRoutes, {
    scripts: config.volunteerScripts ?? (() => Promise.reject(new Error('no browser volunteer here'))),
  });
  const sockets = attachWorkerSockets(app, {
    core,
    log,
    heartbeatMs: config.heartbeatMs,
    retryAfterMs: config.retryAfterMs,
    maxResultBytes: config.maxResultBytes,
    limits: config.limits,
    authFailures,
  });
  return { app, sockets };
}
