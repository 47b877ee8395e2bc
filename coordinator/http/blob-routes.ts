import { createReadStream } from 'node:fs';
import type { FastifyPluginCallback } from 'fastify';
import { ProtocolError } from '../../proto/errors.ts';
import { ROUTES } from '../../proto/routes.ts';
import type { BlobStore } from '../store/blob-store.ts';
import type { CoordinatorCore } from '../core/coordinator-core.ts';
import { requireIdentity } from './auth.ts';

export interface BlobRouteOptions {
  readonly blobs: BlobStore;
  readonly core: CoordinatorCore;
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

/** GET blob: immutable, content-addressed, cacheable, with single ranges. Workers only. */
export const blobRoutes: FastifyPluginCallback<BlobRouteOptions> = (app, { blobs, core }, done) => {
  app.addHook('onRequest', requireIdentity(core));
  app.get<{ Params: { sha256: string } }>(ROUTES.blob.pattern, async (request, reply) => {
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
    core.blobServed(sha256, length);
    reply.header('content-length', length);
    return reply.send(size === 0 ? Buffer.alloc(0) : createReadStream(blobs.path(sha256), { start, end }));
  });
  done();
};
