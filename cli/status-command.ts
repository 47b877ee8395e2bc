/**
 * `arbor status --url http://H:P [--json]`: a running coordinator's job from its read-only
 * JSON API (/v1/status, /v1/shards, /v1/workers), every body checked against its schema.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { Command, InvalidArgumentError } from 'commander';
import type { ShardInfo, Shards, Status, Workers } from '../proto/dashboard.ts';

export type StatusErrorCode = 'STATUS_UNREACHABLE' | 'STATUS_INVALID';

/** cli/main.ts prints it as `arbor: [CODE] message`. */
export class StatusError extends Error {
  constructor(
    readonly code: StatusErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StatusError';
  }
}

export interface StatusReport {
  readonly status: Status;
  readonly shards: Shards;
  readonly workers: Workers;
}

const TIMEOUT_MS = 10_000;
const TOP_WORKERS = 10;
const MAX_SHARD_LINES = 32;

/** The coordinator's HTTP base (no path) from http(s):// or ws(s):// as given to workers. */
export function coordinatorBase(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidArgumentError(`--url must be http://HOST:PORT or ws://HOST:PORT, got '${url}'.`);
  }
  const protocol = { 'http:': 'http:', 'https:': 'https:', 'ws:': 'http:', 'wss:': 'https:' }[
    parsed.protocol
  ];
  if (protocol === undefined)
    throw new InvalidArgumentError(`--url must be http(s):// or ws(s)://, got '${parsed.protocol}'.`);
  return `${protocol}//${parsed.host}`;
}

type DashboardSchemas = typeof import('../proto/dashboard.ts');

async function getChecked<T extends TSchema>(
  url: string,
  schemaOf: (schemas: DashboardSchemas) => T,
  timeoutMs: number,
  token: string | undefined,
): Promise<Static<T>> {
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, {
      signal: AbortSignal.timeout(timeoutMs),
      headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    });
    text = await response.text();
  } catch (error) {
    const err = error as Error & { cause?: { code?: string; message?: string } };
    const why =
      err.name === 'TimeoutError'
        ? `no answer within ${timeoutMs / 1000} s`
        : (err.cause?.code ?? err.cause?.message ?? err.message);
    throw new StatusError('STATUS_UNREACHABLE', `cannot reach the coordinator at ${url}: ${why}`);
  }
  if (!response.ok)
    throw new StatusError(
      'STATUS_INVALID',
      `${url} answered HTTP ${response.status}${text ? `: ${text.slice(0, 200)}` : ''} (is this an Arbor coordinator?)`,
    );
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new StatusError(
      'STATUS_INVALID',
      `${url} did not answer JSON: ${JSON.stringify(text.slice(0, 80))}`,
    );
  }
  // Loaded only when a body is checked: `arbor status --help` and `arbor admin` need none of it.
  const [{ Value }, schemas] = await Promise.all([
    import('@sinclair/typebox/value'),
    import('../proto/dashboard.ts'),
  ]);
  const first = Value.Errors(schemaOf(schemas), body).First();
  if (first !== undefined)
    throw new StatusError(
      'STATUS_INVALID',
      `${url} answered an unexpected body: ${first.path || '(root)'}: ${first.message} ` +
        `(got ${JSON.stringify(first.value)?.slice(0, 80) ?? 'nothing'}; coordinator and CLI versions may differ)`,
    );
  return body as Static<T>;
}

/** GET /v1/status, /v1/shards and /v1/workers?limit=10, validated; throws StatusError. */
export async function fetchStatus(
  url: string,
  timeoutMs = TIMEOUT_MS,
  token?: string,
): Promise<StatusReport> {
  const base = coordinatorBase(url);
  const [status, shards, workers] = await Promise.all([
    getChecked(`${base}/v1/status`, (s) => s.StatusSchema, timeoutMs, token),
    getChecked(`${base}/v1/shards`, (s) => s.ShardsSchema, timeoutMs, token),
    getChecked(`${base}/v1/workers?limit=${TOP_WORKERS}`, (s) => s.WorkersSchema, timeoutMs, token),
  ]);
  return { status, shards, workers };
}

// ---------------------------------------------------------------- formatting

// Not toLocaleString: its first call loads ICU's locale data, a tenth of the command's time.
const count = (n: number): string => String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
const megabytes = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;
const percent = (x: number | null, digits = 1): string =>
  x === null ? 'n/a' : `${(x * 100).toFixed(digits)}%`;
const fixed = (x: number | null, digits: number): string => (x === null ? 'n/a' : x.toFixed(digits));
/** Volunteers choose their names: no control characters (terminal escapes) reach the screen. */
const printable = (text: string, max: number): string => {
  const safe = text.replace(/[\p{Cc}\p{Cf}]/gu, '?');
  return safe.length > max ? `${safe.slice(0, max - 1)}…` : safe;
};

/** 45s, 12m 05s, 3h 20m, 2d 03h. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d ${pad(Math.floor((s % 86_400) / 3600))}h`;
}

/** Rows as left-aligned columns separated by two spaces, indented by two. */
function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => `  ${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')}`.trimEnd());
}

const HEALTHS: readonly ShardInfo['health'][] = ['bad', 'warn', 'ok', 'idle', 'done'];

function shardLines(shards: Shards): string[] {
  const all = shards.shards;
  const head = `shards (${all.length}, frozen top ${shards.frozen} levels)`;
  if (all.length === 0) return [`${head}: none yet`];
  if (all.length > MAX_SHARD_LINES) {
    const byHealth = HEALTHS.map((h) => `${h} ${all.filter((s) => s.health === h).length}`);
    const inFlight = all.reduce((sum, s) => sum + s.in_flight, 0);
    return [`${head}: ${byHealth.join(' · ')} · ${inFlight} in flight`];
  }
  return [
    head,
    ...table([
      ['id', 'samples', 'version', 'in flight', 'staleness', 'val loss', 'health'],
      ...all.map((s) => [
        String(s.id),
        count(s.samples),
        String(s.version),
        String(s.in_flight),
        fixed(s.mean_staleness, 2),
        fixed(s.val_loss, 4),
        s.health,
      ]),
    ]),
  ];
}

function workerLines(workers: Workers): string[] {
  const top = [...workers.workers].sort((a, b) => b.credit - a.credit).slice(0, TOP_WORKERS);
  const head = `top workers by credit (${top.length} of ${workers.total})`;
  if (top.length === 0) return ['workers: none has connected yet'];
  return [
    head,
    ...table([
      ['name', 'credit', 'units', 'rejections', 'samples/s', 'backend', 'standing', 'connected'],
      ...top.map((w) => [
        printable(w.name, 24),
        count(w.credit),
        String(w.units_done),
        String(w.rejections),
        w.samples_per_s === null ? 'n/a' : w.samples_per_s.toFixed(0),
        printable(w.backend, 16),
        w.standing,
        w.connected ? 'yes' : 'no',
      ]),
    ]),
  ];
}

/** The human summary printed by `arbor status` (ends with a newline). */
/** ' · no volunteers for 12m': training waits for volunteers (a minute or more without one). */
export function volunteerGap(status: Pick<Status, 'phase' | 'now_ms' | 'workers'>): string {
  const since = status.workers.none_since_ms;
  if (since === null || status.phase !== 'training') return '';
  const seconds = (status.now_ms - since) / 1000;
  return seconds >= 60 ? ` · no volunteers for ${formatDuration(seconds)}` : '';
}

export function formatStatus(status: Status, shards: Shards, workers: Workers): string {
  const { progress, accuracy, traffic } = status;
  const eta =
    status.phase === 'done'
      ? 'finished'
      : status.paused
        ? 'no ETA while paused'
        : progress.eta_s === null
          ? 'ETA unknown'
          : `ETA ${formatDuration(progress.eta_s)}`;
  const central =
    accuracy.central_hard_test_acc === null
      ? ''
      : ` (central twin ${percent(accuracy.central_hard_test_acc, 2)})`;
  const lines = [
    `job        ${status.data} · depth ${status.model.depth}, frozen ${status.model.frozen}, leaf ${status.model.leaf}`,
    status.pretraining !== null
      ? `phase      pretraining the top · epoch ${status.pretraining.epoch} of ${status.pretraining.epochs} · ${percent(status.pretraining.fraction)}`
      : `phase      ${status.paused ? 'training, paused by the operator' : status.phase} · ${percent(progress.fraction)} trained (${count(progress.trained_samples)} / ${count(progress.budget_samples)} samples) · ${eta}`,
    `accuracy   hard test ${percent(accuracy.hard_test_acc, 2)}${central} · val loss ${fixed(accuracy.val_loss, 4)}`,
    `workers    ${status.workers.connected} connected / ${status.workers.known} known${volunteerGap(status)}`,
    `units      ${Object.entries(status.units)
      .map(([state, n]) => `${state} ${n}`)
      .join(' · ')}`,
    `results    ${count(status.results.accepted)} accepted · ${count(status.results.rejected)} rejected`,
    `crowd      ${percent(status.crowd.utilization)} of the volunteers' time merged · ${percent(status.crowd.idle_fraction)} idle · ${percent(status.crowd.wasted_fraction)} wasted`,
    `storage    ${megabytes(status.storage.bytes)} in ${count(status.storage.blobs)} blobs`,
    `traffic    comm reduction ${traffic.comm_reduction === null ? 'n/a' : `${traffic.comm_reduction.toFixed(1)}×`} · routing imbalance ${fixed(status.routing_imbalance, 2)}`,
    '',
    ...shardLines(shards),
    '',
    ...workerLines(workers),
  ];
  return `${lines.join('\n')}\n`;
}

/** Where `arbor coordinator` listens when started with no --host or --port. */
export const LOCAL_COORDINATOR = 'http://127.0.0.1:7070';

export function statusCommand(): Command {
  return new Command('status')
    .description("A running coordinator's job: progress, accuracy, shards and the top workers.")
    .option(
      '--url <url>',
      'the coordinator, http://HOST:PORT (the ws:// address given to workers works too)',
      coordinatorBase,
      LOCAL_COORDINATOR,
    )
    .option('--token <secret>', "the coordinator's read token, if it has one (default: $ARBOR_READ_TOKEN)")
    .option('--json', 'print {status, shards, workers} as one JSON object on stdout')
    .action(async (opts: { url: string; json: boolean; token?: string }) => {
      const token = opts.token ?? process.env['ARBOR_READ_TOKEN'];
      const report = await fetchStatus(opts.url, undefined, token);
      process.stdout.write(
        opts.json
          ? `${JSON.stringify(report)}\n`
          : formatStatus(report.status, report.shards, report.workers),
      );
    });
}
