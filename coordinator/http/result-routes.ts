import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS, ProtocolError } from '../../proto/errors.ts';
import type { ResultResponse } from '../../proto/messages.ts';
import { parseResultMetrics } from '../../proto/parse.ts';
import { HEADERS, ROUTES } from '../../proto/routes.ts';
import type { CoordinatorCore } from '../core/coordinator-core.ts';
import { ownedWorkerId } from '../core/identity.ts';
import { standingOwner } from '../core/standing.ts';
import { bearerOf, requireIdentity } from './auth.ts';
import { type UploadLimits, UploadSlots, uploadDeadlineMs } from './upload-slots.ts';

export interface ResultRouteOptions {
  readonly core: CoordinatorCore;
  /** The sender's credit and place and the job's progress, told with every verdict. */
  readonly standingOf: (workerId: string) => Partial<ResultResponse>;
  readonly maxResultBytes: number;
  readonly limits: UploadLimits;
}

function header(request: FastifyRequest, name: string): string {
  const value = request.headers[name];
  if (typeof value !== 'string' || value.length === 0)
    throw new ProtocolError('BAD_MESSAGE', `missing header ${name}`);
  return value;
}

/**
 * Answers an upload that is still arriving when its time is up, and closes the connection
 * (the rest of its body is never read).
 */
function abortLate(
  request: FastifyRequest,
  reply: FastifyReply,
  deadlineMs: number,
  minBytesPerS: number,
): void {
  const error = new ProtocolError(
    'RATE_LIMITED',
    `the upload did not arrive within ${Math.round(deadlineMs / 1000)} s (at least ${Math.round(minBytesPerS / 1024)} KiB/s); retry on a faster connection`,
  );
  if (reply.sent) request.raw.destroy();
  else void reply.code(429).header('connection', 'close').send(error.toWire());
}

/** PUT a unit's result: a safetensors delta, answered accepted (200) or rejected with the rule's code. */
export const resultRoutes: FastifyPluginCallback<ResultRouteOptions> = (app, options, done) => {
  app.addHook('onRequest', requireIdentity(options.core));
  const slots = new UploadSlots(options.limits);
  // Before a byte of the body is read: the sender must hold the lease, and there must be room.
  app.addHook('onRequest', (request: FastifyRequest<{ Params: { id: string } }>, reply, done) => {
    try {
      const length = Number(request.headers['content-length'] ?? NaN);
      if (length > options.maxResultBytes)
        throw new ProtocolError('FRAME_TOO_LARGE', `a result is at most ${options.maxResultBytes} bytes`);
      const workerId = header(request, HEADERS.worker);
      const owned = ownedWorkerId(options.core.identify(bearerOf(request.headers))!)?.id;
      if (owned !== undefined && workerId !== owned && !workerId.startsWith(`${owned}-`))
        throw new ProtocolError(
          'UNAUTHORIZED',
          `this token does not speak for worker ${workerId.slice(0, 40)}`,
        );
      options.core.checkLease({
        unitId: request.params.id,
        workerId,
        leaseToken: header(request, HEADERS.lease),
      });
      const release = slots.claim(request.ip, standingOwner(workerId));
      const deadlineMs = uploadDeadlineMs(
        Number.isFinite(length) ? length : options.maxResultBytes,
        options.limits,
      );
      const late = setTimeout(() => {
        if (request.raw.complete) return;
        release();
        abortLate(request, reply, deadlineMs, options.limits.minUploadBytesPerSecond);
      }, deadlineMs);
      request.raw.once('end', () => clearTimeout(late));
      request.raw.once('close', () => {
        clearTimeout(late);
        release();
      });
      done();
    } catch (error) {
      done(error as Error);
    }
  });
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_request, body, done) =>
    done(null, body),
  );
  app.put<{ Params: { id: string } }>(
    ROUTES.unitResult.pattern,
    { bodyLimit: options.maxResultBytes },
    async (request, reply) => {
      const body = request.body;
      if (!Buffer.isBuffer(body))
        throw new ProtocolError(
          'BAD_MESSAGE',
          'the result body must be application/octet-stream (safetensors)',
        );
      const outcome = options.core.submit({
        unitId: request.params.id,
        workerId: header(request, HEADERS.worker),
        leaseToken: header(request, HEADERS.lease),
        metrics: parseResultMetrics(header(request, HEADERS.metrics)),
        body,
      });
      if (outcome.code !== undefined)
        return reply.code(ERRORS[outcome.code].httpStatus ?? 422).send(outcome.response);
      return reply.send({ ...outcome.response, ...options.standingOf(header(request, HEADERS.worker)) });
    },
  );
  done();
};
