/**
 * Every path and header of the wire, defined once: the coordinator registers the patterns,
 * the worker builds the paths, the docs list both.
 */
export const ROUTES = {
  /** The control WebSocket (upgrade with `Authorization: Bearer TOKEN` when required). */
  workerSocket: '/v1/ws',
  /** Content-addressed, immutable: shard data, subtree weights, checkpoints. */
  blob: { pattern: '/v1/blobs/:sha256', path: (sha256: string) => `/v1/blobs/${sha256}` },
  /** A unit's delta (safetensors body); answered with ResultResponse. */
  unitResult: {
    pattern: '/v1/units/:id/result',
    path: (unitId: string) => `/v1/units/${encodeURIComponent(unitId)}/result`,
  },
  /** The volunteer package (npm tarball) of this coordinator's version; redirects to the pinned one. */
  workerPackage: '/v1/worker.tgz',
  workerPackagePinned: {
    pattern: '/v1/worker/:file',
    path: (sha256: string) => `/v1/worker/arbor-worker-${sha256}.tgz`,
  },
} as const;

/** Headers of PUT unitResult. */
export const HEADERS = {
  worker: 'x-arbor-worker',
  lease: 'x-arbor-lease',
  metrics: 'x-arbor-metrics',
} as const;

/** Turns the coordinator's ws:// address into the http:// base of its routes, and back. */
export function httpBase(wsUrl: string): string {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === 'wss:' || url.protocol === 'https:' ? 'https:' : 'http:';
  url.pathname = '';
  url.search = '';
  return url.toString().replace(/\/$/, '');
}

export function socketUrl(coordinatorUrl: string): string {
  const url = new URL(httpBase(coordinatorUrl));
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.pathname = ROUTES.workerSocket;
  return url.toString();
}
