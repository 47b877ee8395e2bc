import type { IncomingHttpHeaders } from 'node:http';
import type { onRequestHookHandler } from 'fastify';
import { ProtocolError } from '../../proto/errors.ts';
import type { CoordinatorCore } from '../core/coordinator-core.ts';

/** The token of `Authorization: Bearer <token>`, if the header has that form. */
export function bearerOf(headers: IncomingHttpHeaders): string | undefined {
  return /^Bearer (.+)$/.exec(headers.authorization ?? '')?.[1];
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
