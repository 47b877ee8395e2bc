/**
 * Every path and header of the wire, defined once: the coordinator registers the patterns,
 * the worker builds the paths, the docs list both.
 */
export const ROUTES = {
  /**
   * The control WebSocket (upgrade with `Authorization: Bearer TOKEN` when required; a browser,
   * which cannot set headers, offers subprotocols `arbor` and `arbor-token.BASE64URL(TOKEN)`).
   * Closing it with 1001 (going away) hands the worker's leases back at once.
   */
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
  /** What the join command runs with `node -e`: fetches the worker's files below and starts it. */
  workerJoin: '/v1/worker/join.mjs',
  /** One of the worker's files (the bundle, a wasm binary), by content: immutable. */
  workerFile: {
    pattern: '/v1/worker/:file',
    path: (sha256: string, name: string) => `/v1/worker/${sha256}-${name}`,
  },
  /** Open enrolment: POST {name}, answered {token, token_id, worker_id} (no token needed). */
  enrol: '/v1/enrol',
} as const;

/** The operator's control endpoints: every one needs `Authorization: Bearer ADMIN_TOKEN`. */
export const ADMIN_ROUTES = {
  pause: '/v1/admin/pause',
  resume: '/v1/admin/resume',
  cancelUnit: {
    pattern: '/v1/admin/units/:id/cancel',
    path: (unitId: string) => `/v1/admin/units/${encodeURIComponent(unitId)}/cancel`,
  },
  revokeToken: {
    pattern: '/v1/admin/tokens/:id/revoke',
    path: (tokenId: string) => `/v1/admin/tokens/${encodeURIComponent(tokenId)}/revoke`,
  },
  /** GET: the current model as an Arbor safetensors checkpoint. */
  model: '/v1/admin/model',
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
