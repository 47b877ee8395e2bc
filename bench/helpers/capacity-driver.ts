/**
 * One process of `arbor bench coordinator`'s simulated crowd: volunteers that speak the real
 * protocol (hello, request_work, the shard's data blob, PUT result) over real sockets, each
 * from a loopback address of its own (127.1.x.y, as strangers would come from addresses of
 * their own, each under the coordinator's per-address limits), and train nothing: each
 * result is a fresh random delta of the assigned shape, large enough to show work.
 * Reads its task as JSON from ARBOR_CAPACITY_TASK; prints one JSON report on stdout.
 */
import { request } from 'node:http';
import WebSocket from 'ws';
import type { Assign, CoordinatorMessage } from '../../proto/messages.ts';
import { parseCoordinatorMessage } from '../../proto/parse.ts';
import { HEADERS, ROUTES } from '../../proto/routes.ts';
import { PROTOCOL_VERSION } from '../../proto/version.ts';
import { encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import { decodeShardData } from '../../shared/data/shard-blob.ts';
import { samplesOfRun } from '../../shared/fff/trainer.ts';
import { TENSOR_NAMES, zeroWeights } from '../../shared/fff/weights.ts';
import { createRng } from '../../shared/random.ts';

export interface CapacityTask {
  readonly wsUrl: string;
  readonly httpBase: string;
  /** Volunteers of this process, and the index of its first (for addresses and names). */
  readonly workers: number;
  readonly first: number;
  /** Connect, then work from startAtMs until endAtMs (epoch ms, shared by every driver). */
  readonly startAtMs: number;
  readonly endAtMs: number;
}

export interface CapacityReport {
  connected: number;
  readonly assignMs: number[];
  readonly acceptMs: number[];
  accepted: number;
  rejected: number;
  noWork: number;
  /** Uploads refused for now (429: the coordinator's upload slots were full), then retried. */
  busy: number;
  readonly errors: string[];
}

const task = JSON.parse(process.env['ARBOR_CAPACITY_TASK'] ?? '{}') as CapacityTask;
const report: CapacityReport = {
  connected: 0,
  assignMs: [],
  acceptMs: [],
  accepted: 0,
  rejected: 0,
  noWork: 0,
  busy: 0,
  errors: [],
};
const shardSamples = new Map<string, Promise<number>>();

/** 127.1.0.1 onwards: one address a volunteer. */
const addressOf = (index: number): string => `127.1.${Math.floor(index / 250)}.${(index % 250) + 1}`;

function http(
  method: 'GET' | 'PUT',
  path: string,
  localAddress: string,
  headers: Record<string, string> = {},
  body?: Uint8Array,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(`${task.httpBase}${path}`, { method, headers, localAddress }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The shard's sample count (from its data blob, fetched once a process), for the sample claim. */
function samplesOf(assign: Assign, localAddress: string): Promise<number> {
  const sha = assign.data_blob.sha256;
  if (!shardSamples.has(sha))
    shardSamples.set(
      sha,
      http('GET', ROUTES.blob.path(sha), localAddress).then(({ status, body }) => {
        if (status !== 200) throw new Error(`data blob: HTTP ${status}`);
        return decodeShardData(new Uint8Array(body)).n;
      }),
    );
  return shardSamples.get(sha)!;
}

function randomDelta(assign: Assign, rng: () => number): Uint8Array {
  const delta = zeroWeights({
    depth: assign.subtree_depth,
    leafWidth: assign.leaf_width,
    inputWidth: assign.input_width,
    outputWidth: assign.output_width,
    activation: assign.activation,
  });
  for (const name of TENSOR_NAMES)
    delta.tensors[name].forEach((_, i, a) => (a[i] = rng() < 0.5 ? 1e-3 : -1e-3));
  return encodeFFF(delta);
}

function putResult(
  assign: Assign,
  workerId: string,
  samples: number,
  body: Uint8Array,
  localAddress: string,
): Promise<{ status: number; body: Buffer }> {
  return http(
    'PUT',
    ROUTES.unitResult.path(assign.unit_id),
    localAddress,
    {
      'content-type': 'application/octet-stream',
      [HEADERS.worker]: workerId,
      [HEADERS.lease]: assign.lease_token,
      [HEADERS.metrics]: JSON.stringify({ train_loss: 1, samples, seconds: 0.01 }),
    },
    body,
  );
}

async function volunteer(index: number): Promise<void> {
  const localAddress = addressOf(task.first + index);
  const ws = new WebSocket(task.wsUrl, { localAddress });
  const frames: CoordinatorMessage[] = [];
  let wake: (() => void) | undefined;
  ws.on('message', (raw: Buffer) => {
    frames.push(parseCoordinatorMessage(raw, 1 << 20));
    wake?.();
  });
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  const next = async (): Promise<CoordinatorMessage | undefined> => {
    while (frames.length === 0) {
      if (ws.readyState !== WebSocket.OPEN) return undefined;
      await Promise.race([new Promise<void>((resolve) => (wake = resolve)), closed]);
    }
    return frames.shift();
  };
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(
    JSON.stringify({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      name: `capacity-${task.first + index}`,
      capabilities: { backend: 'simulated', threads: 1, gpu: false, samples_per_s: 1000 },
    }),
  );
  const welcome = await next();
  if (welcome?.type !== 'welcome') throw new Error(`no welcome: ${JSON.stringify(welcome)}`);
  report.connected++;
  const rng = createRng(task.first + index + 1);
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, task.startAtMs - Date.now())));
  while (Date.now() < task.endAtMs) {
    const asked = performance.now();
    ws.send(JSON.stringify({ type: 'request_work' }));
    const answer = await next();
    if (answer === undefined) throw new Error('the coordinator closed the socket');
    if (answer.type === 'no_work') {
      report.noWork++;
      await new Promise((resolve) => setTimeout(resolve, Math.min(answer.retry_after_ms, 1000)));
      continue;
    }
    if (answer.type !== 'assign') continue;
    report.assignMs.push(performance.now() - asked);
    const samples = samplesOfRun(
      answer.recipe.local_epochs,
      await samplesOf(answer, localAddress),
      answer.recipe.batch,
    );
    const body = randomDelta(answer, rng);
    const sent = performance.now();
    let reply = await putResult(answer, welcome.worker_id, samples, body, localAddress);
    // The coordinator takes a few uploads at once (limits.ts); a worker told 429 waits and retries.
    while (reply.status === 429 && Date.now() < task.endAtMs + 10_000) {
      report.busy++;
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 40));
      reply = await putResult(answer, welcome.worker_id, samples, body, localAddress);
    }
    const { status } = reply;
    report.acceptMs.push(performance.now() - sent);
    const text = reply.body.toString();
    const verdict =
      status === 200 || status === 422 ? (JSON.parse(text) as { status?: string }).status : undefined;
    if (status === 200 && verdict === 'accepted') report.accepted++;
    else if (verdict === 'rejected') report.rejected++;
    else report.errors.push(`result: HTTP ${status} ${text.slice(0, 120)}`);
  }
  ws.close();
}

await Promise.all(
  Array.from({ length: task.workers }, (_, index) =>
    volunteer(index).catch((error: unknown) => {
      report.errors.push((error as Error).message);
    }),
  ),
);
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exit(0);
