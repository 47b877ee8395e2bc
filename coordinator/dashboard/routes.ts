/** GET / (the live dashboard), its assets, the read-only JSON API and the event stream. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { EventItem } from '../../proto/dashboard.ts';
import { ProtocolError } from '../../proto/errors.ts';
import type { BlobStore } from '../blob-store.ts';
import type { RunningCoordinator } from '../coordinator.ts';
import { ShardGallery } from './shard-gallery.ts';
import { seriesView, shardsView, statusView, workersView } from './status-views.ts';

export interface DashboardDeps {
  readonly coordinator: () => RunningCoordinator;
  readonly blobs: BlobStore;
  readonly speeds: ReadonlyMap<string, number>;
  /** The central twin's hard test accuracy, once known. */
  readonly centralHardTestAcc: () => number | undefined;
  /** How often each event stream looks for new events. */
  readonly pollMs?: number;
}

const require = createRequire(import.meta.url);
const here = (file: string) => new URL(file, import.meta.url);
const ASSETS: Record<string, { path: string | URL; type: string }> = {
  'uplot.js': { path: require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript' },
  'uplot.css': { path: require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css' },
  'dashboard.js': { path: here('./page/dashboard.js'), type: 'text/javascript' },
  'dashboard.css': { path: here('./page/dashboard.css'), type: 'text/css' },
};
const MAX_WORKERS_PAGE = 200;
const EVENTS_PER_POLL = 500;

function integerQuery(value: unknown, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > max)
    throw new ProtocolError('BAD_MESSAGE', `${name} must be an integer from 0 to ${max}`);
  return n;
}

export function registerDashboard(app: FastifyInstance, deps: DashboardDeps): void {
  const page = readFileSync(here('./page/index.html'), 'utf8');
  const assets = new Map(
    Object.entries(ASSETS).map(([name, a]) => [name, { body: readFileSync(a.path), type: a.type }]),
  );
  const gallery = new ShardGallery(deps.blobs);
  const streams = new Set<ServerResponse>();

  app.get('/', (_request, reply) => reply.type('text/html; charset=utf-8').send(page));
  app.get<{ Params: { name: string } }>('/assets/:name', (request, reply) => {
    const asset = assets.get(request.params.name);
    if (!asset) throw new ProtocolError('NOT_FOUND', `no asset ${request.params.name.slice(0, 80)}`);
    return reply.type(asset.type).header('cache-control', 'public, max-age=3600').send(asset.body);
  });

  app.get('/v1/status', () => {
    const central = deps.centralHardTestAcc();
    return statusView(deps.coordinator(), central !== undefined ? { centralHardTestAcc: central } : {});
  });
  app.get('/v1/shards', () => shardsView(deps.coordinator(), gallery));
  app.get<{ Params: { id: string } }>('/v1/shards/:id/samples', (request) => {
    const id = Number(request.params.id);
    const shard = Number.isInteger(id) ? deps.coordinator().store.getShard(id) : undefined;
    if (!shard) throw new ProtocolError('NOT_FOUND', `no shard ${request.params.id.slice(0, 20)}`);
    return gallery.samples(shard);
  });
  app.get<{ Querystring: { offset?: string; limit?: string } }>('/v1/workers', (request) =>
    workersView(
      deps.coordinator(),
      deps.speeds,
      integerQuery(request.query.offset, 'offset', 0, 2 ** 31),
      integerQuery(request.query.limit, 'limit', 50, MAX_WORKERS_PAGE),
    ),
  );
  app.get('/v1/series', () => seriesView(deps.coordinator()));

  app.get<{ Querystring: { after?: string } }>('/v1/events', (request, reply) => {
    const lastEventId = request.headers['last-event-id'];
    let after = integerQuery(
      typeof lastEventId === 'string' ? lastEventId : request.query.after,
      'after',
      0,
      2 ** 53 - 1,
    );
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    res.write('retry: 2000\n\n');
    streams.add(res);
    const flush = () => {
      for (const row of deps.coordinator().store.eventsAfter(after, EVENTS_PER_POLL)) {
        const item: EventItem = { id: row.id, at_ms: row.atMs, kind: row.kind, data: row.data };
        res.write(`id: ${row.id}\ndata: ${JSON.stringify(item)}\n\n`);
        after = row.id;
      }
    };
    flush();
    const timer = setInterval(flush, deps.pollMs ?? 500);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    res.on('close', () => {
      clearInterval(timer);
      clearInterval(keepAlive);
      streams.delete(res);
    });
  });

  app.addHook('preClose', (done) => {
    for (const res of streams) res.end();
    done();
  });
}
