import { createReadStream } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { ERRORS, ProtocolError } from '../proto/errors.ts';
import { parseResultMetrics } from '../proto/parse.ts';
import type { BlobStore } from './blob-store.ts';
import type { ResultIntake } from './merge/result-intake.ts';
import type { Scheduler } from './scheduler.ts';
import type { Store } from './store/store.ts';
import { attachWorkerSession, MAX_FRAME_BYTES } from './worker-session.ts';

export interface ServerDeps {
  readonly store: Store;
  readonly blobs: BlobStore;
  readonly scheduler: Scheduler;
  readonly intake: ResultIntake;
  readonly log: Logger;
  readonly now: () => number;
  readonly heartbeatMs: number;
  readonly maxResultBytes: number;
  /** When set, workers must present it (Authorization: Bearer) on the upgrade and on HTTP. */
  readonly token?: string;
  /** Blobs whose bytes count as data rather than model traffic. */
  readonly isDataBlob: (sha: string) => boolean;
  /** Called after every accepted result (evaluation schedule, end of job). */
  readonly afterAccept: () => void;
  /** Adds the dashboard and read-only API. */
  readonly extraRoutes?: (app: FastifyInstance, speeds: ReadonlyMap<string, number>) => void;
}

export interface CoordinatorServer {
  readonly app: FastifyInstance;
  readonly wss: WebSocketServer;
  readonly connected: Map<string, WebSocket>;
  readonly speeds: Map<string, number>;
}

const sameSecret = (given: string, expected: string): boolean => {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
};

function bearer(header: string | undefined): string | undefined {
  const match = /^Bearer (.+)$/.exec(header ?? '');
  return match?.[1];
}

function sendProtocolError(reply: FastifyReply, error: ProtocolError): FastifyReply {
  return reply.code(error.spec.httpStatus ?? 500).send(error.toWire());
}

function header(request: FastifyRequest, name: string): string {
  const value = request.headers[name];
  if (typeof value !== 'string' || value.length === 0)
    throw new ProtocolError('BAD_MESSAGE', `missing header ${name}`);
  return value;
}

/** Parses `bytes=a-b` (one range) against a blob of `size` bytes; undefined = unsatisfiable. */
export function parseRange(value: string, size: number): { start: number; end: number } | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (match[1] === '') {
    start = Math.max(0, size - Number(match[2]));
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  return start <= end && start < size ? { start, end } : undefined;
}

/** fastify for HTTP and ws (noServer) on the same port; workers authenticate on upgrade. */
export function buildServer(deps: ServerDeps): CoordinatorServer {
  const { store, blobs, intake, log } = deps;
  const app = Fastify({ logger: false, bodyLimit: deps.maxResultBytes });
  const connected = new Map<string, WebSocket>();
  const speeds = new Map<string, number>();
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });

  const authorized = (authorization: string | undefined): boolean =>
    deps.token === undefined || sameSecret(bearer(authorization) ?? '', deps.token);

  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_request, body, done) =>
    done(null, body),
  );

  app.setErrorHandler((error, _request, reply) => {
    if (error instanceof ProtocolError) return sendProtocolError(reply, error);
    const err = error as Error & { code?: string; statusCode?: number };
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
      return sendProtocolError(reply, new ProtocolError('FRAME_TOO_LARGE', err.message));
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500)
      return sendProtocolError(reply, new ProtocolError('BAD_MESSAGE', err.message));
    log.error({ err }, 'request failed');
    return sendProtocolError(reply, new ProtocolError('INTERNAL', 'internal error'));
  });

  app.addHook('onRequest', (request, _reply, done) => {
    const path = request.url.split('?')[0] ?? '';
    const guarded = path.startsWith('/v1/blobs/') || path.startsWith('/v1/units/');
    done(
      guarded && !authorized(request.headers.authorization) ? new ProtocolError('UNAUTHORIZED') : undefined,
    );
  });

  app.get<{ Params: { sha256: string } }>('/v1/blobs/:sha256', async (request, reply) => {
    const { sha256 } = request.params;
    if (!blobs.has(sha256)) throw new ProtocolError('NOT_FOUND', `no blob ${sha256.slice(0, 80)}`);
    const size = blobs.size(sha256);
    const etag = `"${sha256}"`;
    reply
      .header('etag', etag)
      .header('cache-control', 'public, max-age=31536000, immutable')
      .header('accept-ranges', 'bytes')
      .type('application/octet-stream');
    if (request.headers['if-none-match'] === etag) return reply.code(304).send();
    let start = 0;
    let end = size - 1;
    const range = request.headers.range;
    if (range !== undefined) {
      const parsed = parseRange(range, size);
      if (parsed === undefined) return reply.code(416).header('content-range', `bytes */${size}`).send();
      ({ start, end } = parsed);
      reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`);
    }
    const length = size === 0 ? 0 : end - start + 1;
    store.addToCounter(deps.isDataBlob(sha256) ? 'data_bytes_out' : 'model_bytes_out', length);
    reply.header('content-length', length);
    return reply.send(size === 0 ? Buffer.alloc(0) : createReadStream(blobs.path(sha256), { start, end }));
  });

  app.put<{ Params: { id: string } }>('/v1/units/:id/result', async (request, reply) => {
    const body = request.body;
    if (!Buffer.isBuffer(body))
      throw new ProtocolError(
        'BAD_MESSAGE',
        'the result body must be application/octet-stream (safetensors)',
      );
    const outcome = intake.submit({
      unitId: request.params.id,
      workerId: header(request, 'x-arbor-worker'),
      leaseToken: header(request, 'x-arbor-lease'),
      metrics: parseResultMetrics(header(request, 'x-arbor-metrics')),
      body,
    });
    if (outcome.response.status === 'accepted') deps.afterAccept();
    return reply.code(outcome.code ? (ERRORS[outcome.code].httpStatus ?? 422) : 200).send(outcome.response);
  });

  deps.extraRoutes?.(app, speeds);

  app.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (request.url ?? '').split('?')[0];
    const refuse = (status: string): void => {
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (path !== '/v1/ws') return refuse('404 Not Found');
    if (!authorized(request.headers.authorization)) {
      log.warn({ remote: request.socket.remoteAddress }, 'worker refused: bad or missing token');
      return refuse('401 Unauthorized');
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      attachWorkerSession(ws, {
        scheduler: deps.scheduler,
        store,
        log,
        now: deps.now,
        heartbeatMs: deps.heartbeatMs,
        maxResultBytes: deps.maxResultBytes,
        connected,
        speeds,
      });
    });
  });

  return { app, wss, connected, speeds };
}
