/**
 * POST /v1/enrol: open enrolment. A newcomer without a token gets a volunteer token of its
 * own, which it must use from then on; per address a few an hour, and a cap an hour in all,
 * so strangers cannot fill the database with tokens.
 */
import type { FastifyPluginCallback } from 'fastify';
import { ProtocolError } from '../../proto/errors.ts';
import { type EnrolResponse } from '../../proto/messages.ts';
import { parseEnrolRequest } from '../../proto/parse.ts';
import { ROUTES } from '../../proto/routes.ts';
import type { Clock } from '../../shared/clock.ts';
import type { CoordinatorCore } from '../core/coordinator-core.ts';
import { ownedWorkerId } from '../core/identity.ts';
import type { ServerLimits } from './limits.ts';

export interface EnrolRouteOptions {
  readonly core: CoordinatorCore;
  readonly open: boolean;
  readonly clock: Clock;
  readonly limits: Pick<ServerLimits, 'maxEnrolmentsPerIpPerHour' | 'maxEnrolmentsPerHour'>;
}

const HOUR_MS = 3_600_000;

export const enrolRoutes: FastifyPluginCallback<EnrolRouteOptions> = (app, options, done) => {
  const { core, clock, limits } = options;
  // Enrolments per address in the current hour; the map is cleared as each hour starts.
  const perIp = new Map<string, number>();
  let hourStarted = clock.now();

  app.post(ROUTES.enrol, { bodyLimit: 4096 }, (request, reply) => {
    if (!options.open)
      throw new ProtocolError(
        'UNAUTHORIZED',
        'enrolment is closed on this coordinator: ask its operator for a volunteer token',
      );
    const { name } = parseEnrolRequest(JSON.stringify(request.body ?? null));
    if (name.trim() === '') throw new ProtocolError('BAD_MESSAGE', '/name: must not be empty');
    const now = clock.now();
    if (now - hourStarted >= HOUR_MS) {
      perIp.clear();
      hourStarted = now;
    }
    const ip = request.ip;
    const count = (perIp.get(ip) ?? 0) + 1;
    if (count > limits.maxEnrolmentsPerIpPerHour)
      throw new ProtocolError(
        'RATE_LIMITED',
        `at most ${limits.maxEnrolmentsPerIpPerHour} enrolments an hour per address`,
      );
    const issued = core.controls.enrol(name, limits.maxEnrolmentsPerHour);
    if (issued === undefined)
      throw new ProtocolError(
        'RATE_LIMITED',
        'this coordinator enrolled as many volunteers as it takes in an hour',
      );
    perIp.set(ip, count);
    const identity = { kind: 'volunteer', tokenId: issued.row.id, name } as const;
    const answer: EnrolResponse = {
      token: issued.token,
      token_id: issued.row.id,
      worker_id: ownedWorkerId(identity)!.id,
    };
    return reply.code(201).send(answer);
  });
  done();
};
