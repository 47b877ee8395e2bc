import type { FastifyPluginCallback } from 'fastify';
import type { Join } from '../../proto/dashboard.ts';
import { ProtocolError } from '../../proto/errors.ts';
import { ROUTES } from '../../proto/routes.ts';
import { ARBOR_VERSION } from '../../shared/version.ts';

export interface PackagedWorker {
  readonly sha256: string;
  readonly bytes: Uint8Array;
}

export interface WorkerPackageOptions {
  /** The tarball, built on first use; rejects when it cannot be. */
  readonly workerPackage: () => Promise<PackagedWorker>;
  /** Whether a worker without a token would be refused (changes as volunteer tokens are issued). */
  readonly tokenRequired: () => boolean;
  /** Open enrolment: a worker without a token asks for one. */
  readonly enrolment: boolean;
}

/**
 * The volunteer package, open to anyone (it is code, not a secret): GET /v1/worker.tgz
 * redirects to the content-addressed tarball, which is immutable; GET /v1/join says how to
 * use it.
 */
export const workerPackageRoutes: FastifyPluginCallback<WorkerPackageOptions> = (app, options, done) => {
  const ready = async (): Promise<PackagedWorker> => {
    try {
      return await options.workerPackage();
    } catch (error) {
      const why = (error as Error).message.split('\n')[0] ?? 'unknown';
      throw new ProtocolError('INTERNAL', `the volunteer package could not be built: ${why}`);
    }
  };

  app.get(ROUTES.workerPackage, async (_request, reply) => {
    const pkg = await ready();
    return reply.redirect(ROUTES.workerPackagePinned.path(pkg.sha256), 302);
  });
  app.get<{ Params: { file: string } }>(ROUTES.workerPackagePinned.pattern, async (request, reply) => {
    const pkg = await ready();
    if (request.params.file !== `arbor-worker-${pkg.sha256}.tgz`)
      throw new ProtocolError('NOT_FOUND', `no package ${request.params.file.slice(0, 100)}`);
    return reply
      .type('application/octet-stream')
      .header('etag', `"${pkg.sha256}"`)
      .header('cache-control', 'public, max-age=31536000, immutable')
      .send(Buffer.from(pkg.bytes));
  });
  app.get('/v1/join', async (): Promise<Join> => {
    const join = {
      version: ARBOR_VERSION,
      token_required: options.tokenRequired(),
      enrolment: options.enrolment,
    };
    try {
      const pkg = await ready();
      return { ...join, package_path: ROUTES.workerPackagePinned.path(pkg.sha256), error: null };
    } catch (error) {
      return { ...join, package_path: null, error: (error as Error).message };
    }
  });
  done();
};
