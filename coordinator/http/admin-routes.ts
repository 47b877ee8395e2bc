/** The operator's control endpoints (ADMIN_ROUTES), all behind the admin token. */
import type { FastifyPluginCallback } from 'fastify';
import { ProtocolError } from '../../proto/errors.ts';
import { ADMIN_ROUTES } from '../../proto/routes.ts';
import type { CoordinatorCore } from '../core/coordinator-core.ts';
import { requireAdmin } from './auth.ts';

export interface AdminRouteOptions {
  readonly core: CoordinatorCore;
  readonly adminToken: string | undefined;
}

export const adminRoutes: FastifyPluginCallback<AdminRouteOptions> = (app, { core, adminToken }, done) => {
  const { controls } = core;
  app.addHook('onRequest', requireAdmin(adminToken));

  app.post(ADMIN_ROUTES.pause, () => {
    controls.pause();
    return { paused: true };
  });
  app.post(ADMIN_ROUTES.resume, () => {
    controls.resume();
    return { paused: false };
  });
  app.post<{ Params: { id: string } }>(ADMIN_ROUTES.cancelUnit.pattern, (request) => {
    const outcome = controls.cancelLease(request.params.id);
    if (outcome === undefined)
      throw new ProtocolError('UNKNOWN_UNIT', `no unit ${request.params.id.slice(0, 128)}`);
    return outcome;
  });
  app.post<{ Params: { id: string } }>(ADMIN_ROUTES.revokeToken.pattern, (request) => {
    const row = controls.revoke(request.params.id);
    if (row === undefined)
      throw new ProtocolError('NOT_FOUND', `no active token ${request.params.id.slice(0, 64)}`);
    return { id: row.id, name: row.name, revoked_ms: row.revokedMs };
  });
  app.get(ADMIN_ROUTES.model, (_request, reply) => {
    if (core.phase !== 'training' && core.phase !== 'done')
      throw new ProtocolError('NOT_FOUND', `there is no model yet: the job is ${core.phase}`);
    const bytes = controls.exportModel();
    return reply
      .type('application/octet-stream')
      .header('content-disposition', 'attachment; filename="arbor-model.safetensors"')
      .send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  });
  done();
};
