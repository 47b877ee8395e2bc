import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyRequest, onRequestHookHandler } from 'fastify';
import { ProtocolError } from '../../proto/errors.ts';
import type { CoordinatorCore } from '../core/coordinator-core.ts';
import { matchesSecret } from '../core/identity.ts';

/** The token of `Authorization: Bearer <token>`, if the header has that form. */
export function bearerOf(headers: IncomingHttpHeaders): string | undefined {
  return /^Bearer (.+)$/.exec(headers.authorization ?? '')?.[1];
}

/** The token a dashboard request presents: a Bearer header or a `token` query parameter (EventSource sends no headers). */
export function presentedToken(request: FastifyRequest): string | undefined {
  const query = (request.query ?? {}) as Record<string, unknown>;
  return bearerOf(request.headers) ?? (typeof query['token'] === 'string' ? query['token'] : undefined);
}

const TOKEN_REQUIRED =
  'this coordinator requires a token: pass --token or set ARBOR_TOKEN (Authorization: Bearer TOKEN)';

/** Why a request without an identity is refused: no token, or one that admits no one. */
export const refusal = (bearer: string | undefined): ProtocolError =>
  new ProtocolError(
    'UNAUTHORIZED',
    bearer === undefined ? TOKEN_REQUIRED : 'the coordinator refused this token',
  );

/** A hook for the routes of one plugin: the request's token must identify a worker. */
export function requireIdentity(core: CoordinatorCore): onRequestHookHandler {
  return (request, _reply, done) => {
    const bearer = bearerOf(request.headers);
    done(core.identify(bearer) === undefined ? refusal(bearer) : undefined);
  };
}

/**
 * A hook for the operator's routes: the admin token, compared in constant time. Without a
 * configured admin token the control endpoints refuse everyone.
 */
export function requireAdmin(adminToken: string | undefined): onRequestHookHandler {
  return (request, _reply, done) => {
    if (adminToken === undefined)
      return done(
        new ProtocolError(
          'UNAUTHORIZED',
          'this coordinator has no admin token: start it with --admin-token or ARBOR_ADMIN_TOKEN',
        ),
      );
    const bearer = bearerOf(request.headers);
    if (matchesSecret(bearer, adminToken)) return done();
    done(
      new ProtocolError(
        'UNAUTHORIZED',
        bearer === undefined
          ? 'admin token required: pass --admin-token (or ARBOR_ADMIN_TOKEN)'
          : 'admin token rejected: it is not this coordinator’s --admin-token',
      ),
    );
  };
}

/**
 * A hook for the dashboard's data and /metrics when a read token is set: the read token or
 * the admin token, as a Bearer header or a `token` query parameter (EventSource sends no
 * headers). Without a read token these stay open.
 */
export function requireReader(
  readToken: string | undefined,
  adminToken: string | undefined,
): onRequestHookHandler {
  return (request, _reply, done) => {
    if (readToken === undefined) return done();
    const given = presentedToken(request);
    const allowed = matchesSecret(given, readToken) || matchesSecret(given, adminToken);
    done(
      allowed
        ? undefined
        : new ProtocolError('UNAUTHORIZED', 'this dashboard needs its read token (?token=…)'),
    );
  };
}
