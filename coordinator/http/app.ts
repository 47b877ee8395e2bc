import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { ProtocolError } from '../../proto/errors.ts';
import type { BlobStore } from '../store/blob-store.ts';
import type { CoordinatorCore } from '../core/coordinator-core.ts';
import type { ReadModel } from '../read/read-model.ts';
import { type Clock, systemClock } from '../../shared/clock.ts';
import { adminRoutes } from './admin-routes.ts';
import { blobRoutes } from './blob-routes.ts';
import { enrolRoutes } from './enrol-routes.ts';
import type { ServerLimits } from './limits.ts';
import { dashboardRoutes } from './dashboard.ts';
import { metricsRoutes } from './metrics.ts';
import { resultRoutes } from './result-routes.ts';
import { type PackagedWorker, workerPackageRoutes } from './worker-package-routes.ts';
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

/** The coordinator's HTTP and WebSocket surface, not yet listening. Every error is `{code, message, retryable}`. */
export function buildApp({ core, read, blobs }: HttpParts, config: HttpConfig): CoordinatorApp {
  const { log } = config;
  const { requestTimeoutMs } = config.limits;
  const app = Fastify({
    logger: false,
    bodyLimit: 1024 * 1024,
    requestTimeout: requestTimeoutMs,
    // Node reads both when the server is made (the property fastify sets afterwards is not
    // enough on Node 20) and checks on this interval (30 s by default).
    http: {
      requestTimeout: requestTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(requestTimeoutMs / 4))),
    },
  });

  app.setErrorHandler((error, _request, reply) => {
    if (error instanceof ProtocolError) return send(reply, error);
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
    maxResultBytes: config.maxResultBytes,
    maxConcurrentUploads: config.limits.maxConcurrentUploads,
  });
  const reader = { readToken: config.readToken, adminToken: config.adminToken };
  void app.register(dashboardRoutes, {
    read,
    pollMs: config.eventPollMs,
    maxEventStreams: config.limits.maxEventStreams,
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
  const sockets = attachWorkerSockets(app, {
    core,
    log,
    heartbeatMs: config.heartbeatMs,
    retryAfterMs: config.retryAfterMs,
    maxResultBytes: config.maxResultBytes,
    limits: config.limits,
  });
  return { app, sockets };
}
