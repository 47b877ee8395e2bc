/**
 * GET /volunteer: a page that turns a browser tab into a worker, its two scripts (bundled on
 * first request) and the wasm backend's binaries. Open to anyone, like the volunteer package:
 * it is code, not data; the tab still needs a token wherever a CLI volunteer would.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FastifyPluginCallback } from 'fastify';
import { ProtocolError } from '../../proto/errors.ts';

export interface VolunteerScripts {
  readonly page: Uint8Array;
  readonly thread: Uint8Array;
}

export interface VolunteerRoutesOptions {
  /** The bundled scripts, built on first use; rejects when they cannot be. */
  readonly scripts: () => Promise<VolunteerScripts>;
}

const require = createRequire(import.meta.url);
const WASM_FILES = [
  'tfjs-backend-wasm.wasm',
  'tfjs-backend-wasm-simd.wasm',
  'tfjs-backend-wasm-threaded-simd.wasm',
];

export const volunteerRoutes: FastifyPluginCallback<VolunteerRoutesOptions> = (app, options, done) => {
  const page = readFileSync(new URL('./page/volunteer.html', import.meta.url));
  const wasmDirectory = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
  const wasm = new Map(WASM_FILES.map((name) => [name, readFileSync(join(wasmDirectory, name))]));
  const scripts = async (): Promise<VolunteerScripts> => {
    try {
      return await options.scripts();
    } catch (error) {
      const why = (error as Error).message.split('\n')[0] ?? 'unknown';
      throw new ProtocolError('INTERNAL', `the browser volunteer could not be built: ${why}`);
    }
  };

  app.get('/volunteer', (_request, reply) => reply.type('text/html; charset=utf-8').send(page));
  app.get<{ Params: { name: string } }>('/volunteer/:name', async (request, reply) => {
    const { name } = request.params;
    if (name === 'page.js' || name === 'thread.js') {
      const bundle = await scripts();
      return reply
        .type('text/javascript; charset=utf-8')
        .header('cache-control', 'no-cache')
        .send(Buffer.from(name === 'page.js' ? bundle.page : bundle.thread));
    }
    throw new ProtocolError('NOT_FOUND', `no volunteer file ${name.slice(0, 80)}`);
  });
  app.get<{ Params: { name: string } }>('/volunteer/wasm/:name', (request, reply) => {
    const bytes = wasm.get(request.params.name);
    if (bytes === undefined)
      throw new ProtocolError('NOT_FOUND', `no wasm file ${request.params.name.slice(0, 80)}`);
    return reply.type('application/wasm').header('cache-control', 'public, max-age=3600').send(bytes);
  });
  done();
};
