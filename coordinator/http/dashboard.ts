/** GET / (the live dashboard), its assets, the read-only JSON API and the event stream. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ServerResponse } from 'node:http';
import type { FastifyPluginCallback } from 'fastify';
import type { EventItem } from '../../proto/dashboard.ts';
import { ProtocolError } from '../../proto/errors.ts';
import type { ReadModel } from '../read/read-model.ts';
import { matchesSecret } from '../core/identity.ts';
import { presentedToken, requireReader } from './auth.ts';
import { type EventStreamLimits, EventStreamQuota } from './event-stream-quota.ts';

export interface DashboardOptions {
  readonly read: ReadModel;
  /** How often the event streams look for new events. */
  readonly pollMs: number;
  readonly streamLimits: EventStreamLimits;
  /** When set, the JSON views and the event stream need it (the page and assets stay open). */
  readonly readToken?: string | undefined;
  readonly adminToken?: string | undefined;
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
const KEEP_ALIVE_MS = 15_000;

function integerQuery(value: unknown, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > max)
    throw new ProtocolError('BAD_MESSAGE', `${name} must be an integer from 0 to ${max}`);
  return n;
}

export const dashboardRoutes: FastifyPluginCallback<DashboardOptions> = (
  app,
  { read, pollMs, streamLimits, readToken, adminToken },
  done,
) => {
  const reader = { onRequest: requireReader(readToken, adminToken) };
  const page = readFileSync(here('./page/index.html'), 'utf8');
  const assets = new Map(
    Object.entries(ASSETS).map(([name, a]) => [name, { body: readFileSync(a.path), type: a.type }]),
  );
  const streams = new Set<ServerResponse>();
  const quota = new EventStreamQuota(streamLimits);

  app.get('/', (_request, reply) => reply.type('text/html; charset=utf-8').send(page));
  app.get<{ Params: { name: string } }>('/assets/:name', (request, reply) => {
    const asset = assets.get(request.params.name);
    if (!asset) throw new ProtocolError('NOT_FOUND', `no asset ${request.params.name.slice(0, 80)}`);
    return reply.type(asset.type).header('cache-control', 'public, max-age=3600').send(asset.body);
  });

  app.get('/v1/status', reader, () => read.status());
  app.get('/v1/shards', reader, () => read.shards());
  app.get<{ Params: { id: string } }>('/v1/shards/:id/samples', reader, (request) => {
    const id = Number(request.params.id);
    const samples = Number.isInteger(id) ? read.shardSamples(id) : undefined;
    if (!samples) throw new ProtocolError('NOT_FOUND', `no shard ${request.params.id.slice(0, 20)}`);
    return samples;
  });
  app.get<{ Querystring: { offset?: string; limit?: string } }>('/v1/workers', reader, (request) =>
    read.workers(
      integerQuery(request.query.offset, 'offset', 0, 2 ** 31),
      integerQuery(request.query.limit, 'limit', 50, MAX_WORKERS_PAGE),
    ),
  );
  app.get('/v1/series', reader, () => read.series());

  // One poll of the event table serves every open stream.
  let cursor = read.lastEventId();
  let poller: NodeJS.Timeout | undefined;
  const send = (res: ServerResponse, item: EventItem) =>
    res.write(`id: ${item.id}\ndata: ${JSON.stringify(item)}\n\n`);
  const poll = () => {
    for (const item of read.eventsAfter(cursor, EVENTS_PER_POLL)) {
      for (const res of streams) send(res, item);
      cursor = item.id;
    }
  };

  // No HEAD: a stream's headers are never sent for one, and it would hold a stream's place.
  const events = { ...reader, exposeHeadRoute: false };
  app.get<{ Querystring: { after?: string } }>('/v1/events', events, (request, reply) => {
    const lastEventId = request.headers['last-event-id'];
    let after = integerQuery(
      typeof lastEventId === 'string' ? lastEventId : request.query.after,
      'after',
      0,
      2 ** 53 - 1,
    );
    // A stream's answer starts at once and never ends: a request body could never be read.
    const length = request.headers['content-length'];
    if (request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0'))
      throw new ProtocolError('BAD_MESSAGE', 'an event stream takes no request body');
    const token = presentedToken(request);
    const release = quota.claim({ ip: request.ip, token, admin: matchesSecret(token, adminToken) });
    reply.raw.once('close', release);
    poll();
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    res.write('retry: 2000\n\n');
    // Catch up to the shared cursor on its own, then follow the shared poll.
    for (
      let batch = read.eventsAfter(after, EVENTS_PER_POLL);
      batch.length > 0;
      batch = read.eventsAfter(after, EVENTS_PER_POLL)
    ) {
      for (const item of batch) if (item.id <= cursor) send(res, item);
      after = batch.at(-1)!.id;
      if (after >= cursor) break;
    }
    streams.add(res);
    poller ??= setInterval(poll, pollMs);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), KEEP_ALIVE_MS);
    res.on('close', () => {
      clearInterval(keepAlive);
      streams.delete(res);
      if (streams.size === 0 && poller !== undefined) {
        clearInterval(poller);
        poller = undefined;
      }
    });
  });

  app.addHook('preClose', (done) => {
    for (const res of streams) res.end();
    done();
  });
  done();
};
