import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { onRequestHookHandler } from 'fastify';
import { ProtocolError } from '../../proto/errors.ts';

const sameSecret = (given: string, expected: string): boolean => {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
};

/** Whether the request carries `Authorization: Bearer <token>` (always true without a token). */
export function authorized(headers: IncomingHttpHeaders, token: string | undefined): boolean {
  if (token === undefined) return true;
  const match = /^Bearer (.+)$/.exec(headers.authorization ?? '');
  return match?.[1] !== undefined && sameSecret(match[1], token);
}

export const TOKEN_REQUIRED =
  'this coordinator requires a token: pass --token or set ARBOR_TOKEN (Authorization: Bearer TOKEN)';

/** A hook for the routes of one plugin: refuses requests without the worker token. */
export function requireToken(token: string | undefined): onRequestHookHandler {
  return (request, _reply, done) => {
    done(authorized(request.headers, token) ? undefined : new ProtocolError('UNAUTHORIZED', TOKEN_REQUIRED));
  };
}
