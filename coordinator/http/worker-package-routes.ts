import type { FastifyPluginCallback } from 'fastify';
import type { Join } from '../../proto/dashboard.ts';
import { ProtocolError } from '../../proto/errors.ts';
import { ROUTES } from '../../proto/routes.ts';
import { ARBOR_VERSION } from '../../shared/version.ts';

export interface PackagedWorker {
  readonly sha256: string;
  readonly bytes: Uint8Array;
  /** The same files loose, by content, for the join script. */
  readonly files: readonly { readonly name: string; readonly sha256: string; readonly bytes: Uint8Array }[];
  /** The script the join command runs (packaging/worker-join-script.ts). */
  readonly joinScript: string;
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
 * The volunteer worker, open to anyone (it is code, not a secret): GET /v1/worker/join.mjs is
 * the script the join command runs, which fetches the worker's files by content
 * (/v1/worker/SHA256-NAME, immutable); GET /v1/worker.tgz redirects to the same files as a
 * content-addressed npm tarball; GET /v1/join says how to use them.
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
    const { file } = request.params;
    if (`/v1/worker/${file}` === ROUTES.workerJoin)
      return reply
        .type('text/javascript; charset=utf-8')
        .header('cache-control', 'no-cache')
        .send(pkg.joinScript);
    const immutable = (type: string, sha256: string, bytes: Uint8Array) =>
      reply
        .type(type)
        .header('etag', `"${sha256}"`)
        .header('cache-control', 'public, max-age=31536000, immutable')
        .send(Buffer.from(bytes));
    if (file === `arbor-worker-${pkg.sha256}.tgz`)
      return immutable('application/octet-stream', pkg.sha256, pkg.bytes);
    const loose = pkg.files.find((f) => ROUTES.workerFile.path(f.sha256, f.name) === `/v1/worker/${file}`);
    if (loose !== undefined)
      return immutable(
        loose.name.endsWith('.wasm') ? 'application/wasm' : 'text/javascript; charset=utf-8',
        loose.sha256,
        loose.bytes,
      );
    throw new ProtocolError('NOT_FOUND', `no worker file ${file.slice(0, 100)}`);
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
