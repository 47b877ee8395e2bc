/**
 * Fuzz (issue 10): a coordinator process with a token, an honest worker process training,
 * and over 10,000 seeded hostile inputs on loopback, at most 16 in flight (see
 * test/helpers/fuzz-inputs.ts for what they are), a few bodies and headers trickled in and
 * abandoned, and one address storming the upgrade. Every answer must come from the error
 * catalogue, nothing unauthenticated gets data, and the coordinator stays up, keeps accepting
 * the honest worker's results and stays bounded in memory.
 *
 * Fuzzing connections come from 127.0.0.10 and up (Linux routes all of 127/8 to lo) and count
 * their upgrades to stay under 120 new sockets per address per minute; 127.0.0.1 is left to
 * the honest worker, so the fuzz never spends its connect budget.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { ERRORS, type ErrorSpec, isErrorCode } from '../../proto/errors.ts';
import { parseCoordinatorMessage, parseResultResponse, parseWorkerMessage } from '../../proto/parse.ts';
import { type Rng, createRng } from '../../shared/random.ts';
import * as gen from '../helpers/fuzz-inputs.ts';
import { query } from '../helpers/job-database.ts';
import { coordinatorUrl, spawnArbor, type Spawned, waitFor } from '../helpers/processes.ts';
import { PROCESS_JOB } from '../helpers/process-job.ts';

const SEED = 20_260_410;
const TOKEN = 'fuzz-token-0123456789';
const TARGET = { ws: 4_200, http: 6_700 }; // plus ~120 upgrades in the storm and 3 slow requests
const LOOPS = { ws: 6, http: 7 }; // 13 in flight, and the 3 slow requests
/**
 * Peak VmRSS during the fuzz over VmRSS after warm-up (273-282 MB): measured +4 to +28 MB over
 * seven runs, and +15 MB with three times the inputs (33,000), so it does not grow with them.
 */
const RSS_BOUND_MB = 96;
const dir = mkdtempSync(join(tmpdir(), 'arbor-fuzz-'));
const db = join(dir, 'fuzz.db');
const children: Spawned[] = [];
let coordinator: Spawned | undefined;
let port = 0;
const auth = `Bearer ${TOKEN}`;
const targets: gen.Targets = { token: TOKEN, units: [], blobs: [], workers: [], leaseTokens: [], leases: [] };

type Kind = 'ws' | 'http' | 'raw' | 'upgrade' | 'slow';
const counts: Record<Kind, Record<string, number>> = { ws: {}, http: {}, raw: {}, upgrade: {}, slow: {} };
const problems = new Map<string, { n: number; example: string }>();
const total = (...kinds: Kind[]): number =>
  kinds.reduce((sum, kind) => sum + Object.values(counts[kind]).reduce((a, b) => a + b, 0), 0);
function record(kind: Kind, outcome: string, input: string, problem?: string): void {
  counts[kind][outcome] = (counts[kind][outcome] ?? 0) + 1;
  if (problem === undefined) return;
  const seen = problems.get(`${kind}: ${problem}`) ?? { n: 0, example: input.slice(0, 240) };
  problems.set(`${kind}: ${problem}`, { ...seen, n: seen.n + 1 });
}
const problemsOf = (pattern: RegExp): string[] =>
  [...problems].filter(([k]) => pattern.test(k)).map(([k, v]) => `${k} (x${v.n}), e.g. ${v.example}`);

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The coordinator's resident memory, or 0 once it is gone. */
const rssMb = (): number => {
  try {
    return (
      Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${coordinator!.child.pid}/status`, 'utf8'))![1]) / 1024
    );
  } catch {
    return 0;
  }
};
const HONEST =
  "SELECT COUNT(*) AS n FROM results JOIN workers ON id = worker_id WHERE name = 'honest' AND status = 'accepted'";
const honestAccepted = (): number => Number(query(db, HONEST)[0]!['n']);
const FUZZERS = "SELECT SUM(units_done) AS units, SUM(credit) AS credit FROM workers WHERE name != 'honest'";
const CREDITED = `SELECT (SELECT SUM(units_done) FROM workers) AS credited,
  (SELECT COUNT(*) FROM results WHERE status = 'accepted') AS accepted`;
function refreshTargets(): void {
  const column = (sql: string) => query(db, sql).flatMap((row) => Object.values(row).map(String));
  targets.units = column("SELECT id FROM units WHERE state = 'leased' OR id LIKE '%-s0001' LIMIT 80");
  targets.blobs = column('SELECT data_blob, weights_blob FROM shards');
  targets.workers = column('SELECT id FROM workers LIMIT 40');
}

// ---------------------------------------------------------------- what a well-formed answer is

const SOCKET_LAYER_CLOSES = [1002, 1007, 1009]; // ws itself: broken framing, invalid UTF-8, over maxPayload
const HTTP_ONLY_STATUSES = [408, 414, 417, 431]; // HTTP conditions with no status of their own in the catalogue

function catalogueProblem(status: number, body: string): string | undefined {
  let wire: Record<string, unknown>;
  try {
    wire = JSON.parse(body) as Record<string, unknown>;
  } catch {
    return `${status} with a body that is not JSON: ${body.slice(0, 60)}`;
  }
  const { code, retryable } = wire;
  if (!isErrorCode(code) || typeof wire['message'] !== 'string' || retryable !== ERRORS[code].retryable)
    return `${status} outside the catalogue: ${JSON.stringify({ ...wire, message: undefined })}`;
  return [ERRORS[code].httpStatus, ...HTTP_ONLY_STATUSES].includes(status)
    ? undefined
    : `${code} answered ${status}`;
}

const decodeAll = (path: string): string => {
  try {
    const once = decodeURIComponent(path);
    return once === path ? path : decodeAll(once);
  } catch {
    return path;
  }
};

/** The first answer in `reply`: its status, its body (sized or chunked; none to HEAD) and what came after. */
function firstAnswer(reply: string, head: boolean): { status: number; body: string; rest: string } {
  const answer = reply.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '');
  const headEnd = answer.indexOf('\r\n\r\n');
  const [fields, after] = [answer.slice(0, headEnd), answer.slice(headEnd + 4)];
  let [body, rest] = ['', after];
  if (!head && /\r\ntransfer-encoding: chunked/i.test(fields)) {
    for (let m = /^([0-9a-f]+)\r\n/i.exec(rest); m; m = /^([0-9a-f]+)\r\n/i.exec(rest)) {
      const size = parseInt(m[1]!, 16);
      body += rest.slice(m[0].length, m[0].length + size);
      rest = rest.slice(m[0].length + size + 2);
      if (size === 0) break;
    }
  } else if (!head) {
    const size = Number(/\r\ncontent-length: *(\d+)/i.exec(fields)?.[1] ?? rest.length);
    [body, rest] = [rest.slice(0, size), rest.slice(size)];
  }
  return { status: Number(/^HTTP\/1\.[01] (\d{3}) /.exec(answer)?.[1] ?? 0), body, rest };
}

function httpVerdict(input: gen.HttpInput, reply: string | undefined): { outcome: string; problem?: string } {
  if (reply === undefined) return { outcome: 'no answer', problem: 'no answer within 10 s' };
  const [method = '', path = ''] = (input.raw?.toString('latin1') ?? `${input.method} ${input.path}`).split(
    /[ \r\n]/,
  );
  const { status, body, rest } = firstAnswer(reply, method === 'HEAD');
  // Node drops CONNECT (there is no 'connect' listener); a body cut short gets no answer.
  if (status === 0 && (input.label === 'connect' || input.halfClose))
    return { outcome: 'closed, as expected' };
  if (status === 0) return { outcome: 'closed without an answer', problem: 'closed without an answer' };
  const decoded = decodeAll(path);
  const upload =
    method === 'PUT' && /^\/v1\/units\/[^/]+\/result$/.test(decoded) && [200, 422].includes(status);
  const upgrade = input.label.startsWith('upgrade');
  const detail = upload
    ? /"status":"(\w+)"/.exec(body)?.[1]
    : status >= 400 && /"code":"(\w+)"/.exec(body)?.[1];
  const outcome = [upgrade && 'upgrade', status, detail].filter(Boolean).join(' ');
  const problem = ((): string | undefined => {
    if (status >= 500) return `${status}: ${body.slice(0, 120)}`;
    if (upgrade && [400, 401, 404, 429].includes(status)) return undefined; // refused by status alone, as documented
    if (!input.raw && method === 'HEAD' && rest.length > 0)
      return `HEAD answered ${status} with a body: ${rest.slice(0, 40)}`;
    const tokenless = input.headers['authorization']?.trim() !== auth; // HTTP trims header values
    if (status < 400 && tokenless && /^\/v1\/+(blobs|units)\//i.test(decoded))
      return `${status} without a token`;
    if (upload) {
      try {
        return parseResultResponse(body) && undefined; // a judged result is answered with a ResultResponse
      } catch {
        return `${status} to an upload, not a ResultResponse`;
      }
    }
    if (status < 400 || method === 'HEAD' || (status === 416 && input.headers['range'])) return undefined;
    return catalogueProblem(status, body);
  })();
  return problem === undefined ? { outcome } : { outcome, problem };
}

/** The coordinator's own parser on a frame: 'valid', an error code, or 'socket' (ws closes it first). */
function predicted(frame: gen.Frame): string {
  if (frame.raw || Buffer.byteLength(frame.data) > 64 * 1024) return 'socket';
  if (frame.binary) return 'BAD_MESSAGE';
  try {
    if (typeof frame.data !== 'string') new TextDecoder('utf-8', { fatal: true }).decode(frame.data);
  } catch {
    return 'socket';
  }
  try {
    return parseWorkerMessage(frame.data, 64 * 1024) && 'valid';
  } catch (error) {
    return (error as { code: string }).code;
  }
}

function wsVerdict(
  frame: gen.Frame,
  frames: string[],
  close?: number,
): { outcome: string; problem?: string } {
  if (close === -1) return { outcome: 'stalled', problem: 'no answer within 10 s' };
  const seen: string[] = [];
  let error: { code: string; retryable: boolean } | undefined;
  for (const raw of frames) {
    try {
      const message = parseCoordinatorMessage(raw, 1 << 20);
      seen.push(message.type === 'error' ? `error ${message.code}` : message.type);
      if (message.type === 'error') error = message;
    } catch {
      return { outcome: 'unparseable', problem: `a frame outside the protocol: ${raw.slice(0, 100)}` };
    }
  }
  const outcome = [...seen, ...(close === undefined ? [] : [`close ${close}`])].join(', ') || 'silent';
  const problem =
    error?.code === 'INTERNAL' || close === 4500
      ? 'INTERNAL'
      : error && close !== (ERRORS[error.code as keyof typeof ERRORS] as ErrorSpec).wsClose
        ? `${error.code} then close ${close}`
        : !error && close !== undefined && !SOCKET_LAYER_CLOSES.includes(close)
          ? `closed ${close} without an error frame`
          : predicted(frame) !== 'valid' && close === undefined
            ? `a ${frame.label} frame the parser refuses went through`
            : undefined;
  return problem === undefined ? { outcome } : { outcome, problem };
}

// ---------------------------------------------------------------- drivers

const upgrades = new Map<string, number[]>();
/** Counts an upgrade from `ip` if it stays under 110 in the last minute (the coordinator allows 120). */
function mayUpgrade(ip: string): boolean {
  const recent = (upgrades.get(ip) ?? []).filter((t) => t > Date.now() - 62_000);
  upgrades.set(ip, recent);
  return recent.length < 110 && recent.push(Date.now()) > 0;
}

/** A control socket that sends a frame and then a probe heartbeat, whose `cancel` ends the frame's answer. */
class FuzzSocket {
  private inbox: string[] = [];
  private closed: number | undefined;
  private wake = (): void => undefined;
  private probes = 0;
  private workerId = '';
  lease: gen.Lease | undefined;
  private constructor(
    readonly ws: WebSocket,
    private readonly share: boolean,
  ) {
    ws.on('message', (data: Buffer) => (this.inbox.push(data.toString()), this.wake()));
    ws.on('close', (code: number) => ((this.closed = code), this.wake()));
  }

  /** The socket, or the status its upgrade was refused with. */
  static open(ip: string, share = true): Promise<FuzzSocket | number> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`, {
      headers: { authorization: auth },
      localAddress: ip,
    });
    ws.on('error', () => undefined);
    return new Promise((resolve) => {
      ws.once('open', () => resolve(new FuzzSocket(ws, share)));
      ws.once(
        'unexpected-response',
        (req, res) => (res.resume(), req.destroy(), resolve(res.statusCode ?? 0)),
      );
      ws.once('close', () => resolve(0));
    });
  }

  async exchange(frame: gen.Frame): Promise<{ frames: string[]; close?: number }> {
    const probe = `probe-${++this.probes}`;
    if (frame.raw) (this.ws as unknown as { _socket: NodeJS.WritableStream })._socket.write(frame.data);
    else this.ws.send(frame.data, { binary: frame.binary === true });
    this.ws.send(JSON.stringify(gen.heartbeatMessage(probe, 'probe')));
    const frames: string[] = [];
    for (const until = Date.now() + 10_000; ;) {
      for (let raw = this.inbox.shift(); raw !== undefined; raw = this.inbox.shift()) {
        if (raw.includes(`"unit_id":"${probe}"`)) return { frames };
        frames.push(raw);
        this.learn(raw);
      }
      if (this.closed !== undefined) return { frames, close: this.closed };
      if (Date.now() > until) return { frames, close: -1 };
      await new Promise<void>((resolve) => ((this.wake = resolve), setTimeout(resolve, 500).unref()));
    }
  }

  /** The worker id of a welcome; the lease of an assign, for uploads and stolen tokens. */
  private learn(raw: string): void {
    const m = /"type":"(welcome|assign)"/.test(raw) ? (JSON.parse(raw) as Record<string, unknown>) : {};
    if (m['type'] === 'welcome') this.workerId = String(m['worker_id']);
    if (m['type'] !== 'assign') return;
    this.lease = {
      unitId: String(m['unit_id']),
      workerId: this.workerId,
      leaseToken: String(m['lease_token']),
    };
    if (this.share) targets.leases.push(this.lease);
    targets.leaseTokens.push(this.lease.leaseToken);
    targets.template ??= gen.zeroDelta(m);
  }
}

async function wsLoop(slot: number, until: number): Promise<void> {
  const rng = createRng(SEED + slot);
  const ips = [`127.0.0.${10 + 2 * slot}`, `127.0.0.${11 + 2 * slot}`];
  for (let sessions = 0; total('ws') < TARGET.ws && Date.now() < until;) {
    const ip = ips.find(mayUpgrade);
    if (ip === undefined) {
      await pause(1_000); // this stream's connect budget is spent for the minute
      continue;
    }
    const socket = await FuzzSocket.open(ip);
    if (socket instanceof FuzzSocket)
      await session(socket, rng, `fuzz-${slot}-${sessions++ % 4}`, until).finally(() =>
        socket.ws.terminate(),
      );
    else record('upgrade', `refused ${socket}`, ip, socket === 429 ? undefined : `refused with ${socket}`);
  }
}

/**
 * Maybe a frame before hello, then hello, then mostly answered frames until one closes the socket.
 * Four names a stream: a name whose results keep being rejected is made to wait for units.
 */
async function session(socket: FuzzSocket, rng: Rng, name: string, until: number): Promise<void> {
  const send = async (frame: gen.Frame): Promise<boolean> => {
    const { frames, close } = await socket.exchange(frame);
    const verdict = wsVerdict(frame, frames, close);
    record('ws', verdict.outcome, `${frame.label}: ${String(frame.data).slice(0, 200)}`, verdict.problem);
    return close === undefined;
  };
  if (gen.chance(rng, 0.12) && !(await send(gen.hostileFrame(rng, targets)))) return;
  if (!(await send({ label: 'hello', data: JSON.stringify(gen.helloMessage(name)) }))) return;
  while (total('ws') < TARGET.ws && Date.now() < until) {
    const r = rng();
    const frame: gen.Frame =
      r < 0.05
        ? { label: 'request_work', data: '{"type":"request_work"}' }
        : r < 0.85
          ? { label: 'benign', data: JSON.stringify(gen.benignFrame(rng, targets)) }
          : gen.hostileFrame(rng, targets);
    if (!(await send(frame))) return;
  }
}

/** Sends bytes on a new connection (half-closed after them if asked); all that came back, or undefined after 10 s. */
function exchangeHttp(data: Buffer, halfClose: boolean, localAddress: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress });
    let reply = '';
    const timer = setTimeout(() => (resolve(undefined), socket.destroy()), 10_000);
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      const final = reply.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '');
      if (/^[^]*?\r\n\r\n/.exec(final)?.[0].includes('text/event-stream')) socket.destroy(); // a stream: the head is the answer
    });
    socket.on('error', () => undefined);
    socket.on('close', () => (clearTimeout(timer), resolve(reply)));
    socket.write(data);
    if (halfClose) socket.end();
  });
}

async function httpLoop(k: number, until: number): Promise<void> {
  const rng = createRng(SEED + 100 + k);
  while (total('http', 'raw') < TARGET.http && Date.now() < until) {
    const input = gen.httpInput(rng, targets);
    const bytes = input.raw ?? gen.encodeRequest(input);
    const { outcome, problem } = httpVerdict(
      input,
      await exchangeHttp(bytes, !!input.halfClose, `127.0.0.${40 + k}`),
    );
    const kind = input.raw ? 'raw' : 'http';
    record(
      kind,
      outcome,
      `${input.label}: ${bytes.toString('latin1')}`,
      problem && `${input.raw ? input.label + ': ' : ''}${problem}`,
    );
    if (input.lease && !/^(200|422)/.test(outcome)) targets.leases.push(input.lease); // still held
  }
}

/**
 * Two uploads with real leases (the coordinator reads their bodies) and a request whose
 * headers never end, trickled a byte per 100 ms for 8 s: resolves with the status of
 * GET /v1/status asked meanwhile. Then they are abandoned (the 300 s request timeout is not waited for).
 */
async function slowRequests(url: string): Promise<number> {
  const requests: Buffer[] = [Buffer.from('GET /v1/status HTTP/1.1\r\nhost: x\r\nx-slow: ')];
  for (const i of [0, 1]) {
    const socket = await FuzzSocket.open(`127.0.0.${60 + i}`, false);
    assert.ok(socket instanceof FuzzSocket, 'a socket for a slow upload');
    await socket.exchange({ label: 'hello', data: JSON.stringify(gen.helloMessage(`fuzz-slow-${i}`)) });
    await socket.exchange({ label: 'request_work', data: '{"type":"request_work"}' });
    socket.ws.terminate();
    const { unitId, workerId, leaseToken } = socket.lease!;
    const metrics = JSON.stringify({ train_loss: 1, samples: 1, seconds: 1 });
    const headers = {
      authorization: auth,
      'content-type': 'application/octet-stream',
      'x-arbor-metrics': metrics,
    };
    Object.assign(headers, { 'x-arbor-worker': workerId, 'x-arbor-lease': leaseToken });
    const bytes = gen.encodeRequest({
      label: '',
      method: 'PUT',
      path: `/v1/units/${unitId}/result`,
      headers,
      body: Buffer.from(targets.template!),
    });
    requests.push(bytes.subarray(0, bytes.length - targets.template!.length)); // the head alone
  }
  const answers = requests.map(() => '');
  const sockets = requests.map((head, i) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: `127.0.0.${62 + i}` }); // writes wait for it
    socket.on('data', (c: Buffer) => (answers[i] += c.toString())).on('error', () => undefined);
    return (socket.write(head), socket);
  });
  for (let tick = 0; tick < 80; tick++) {
    for (const socket of sockets) socket.write('a');
    await pause(100); // the trickle's pace
  }
  const status = (await fetch(`${url}/v1/status`)).status;
  sockets.forEach((socket, i) => {
    const outcome = answers[i]
      ? `answered ${answers[i].slice(9, 12)} while trickling`
      : 'unanswered while trickling';
    record('slow', outcome, i === 0 ? 'endless headers' : 'upload with a real lease');
    socket.destroy();
  });
  return status;
}

/** New sockets from one address as fast as they open, until one is refused: the attempt that was. */
async function connectStorm(): Promise<number | undefined> {
  for (let attempt = 1; attempt <= 250; attempt++) {
    const socket = await FuzzSocket.open('127.0.0.70');
    if (socket instanceof FuzzSocket) {
      socket.ws.terminate();
      record('upgrade', 'open', 'storm');
      continue;
    }
    record(
      'upgrade',
      `refused ${socket}`,
      'storm',
      socket === 429 ? undefined : `storm refused with ${socket}`,
    );
    if (socket === 429) return attempt;
  }
  return undefined;
}

// ---------------------------------------------------------------- the run

const run = {
  error: undefined as string | undefined,
  seconds: 0,
  rssMb: { warm: 0, peak: 0, after: 0 },
  honestAccepted: { before: 0, end: 0, after: 0 },
  stormRefusedAt: undefined as number | undefined,
  statusWhileSlow: 0,
  statusAfter: 0,
  fuzzers: {} as Record<string, unknown>, // what the fuzzing workers earned
  credited: {} as Record<string, unknown>, // units credited, results accepted: replays credit nothing
};

async function fuzz(): Promise<void> {
  const job = PROCESS_JOB;
  // A budget the test never reaches; a loose tolerance, so that the honest worker overtraining
  // its shards (hundreds of units) is not what refuses its results late in a slow run.
  const budget = [
    '--shard-epochs',
    '300',
    '--local-epochs',
    '1',
    '--eval-every',
    '25',
    '--val-tolerance',
    '2',
  ];
  coordinator = spawnArbor(['coordinator', ...job, ...budget, '--port', '0', '--db', db, '--json'], {
    ARBOR_TOKEN: TOKEN,
  });
  children.push(coordinator);
  const url = await coordinatorUrl(coordinator);
  port = Number(new URL(url).port);
  const worker = ['worker', '--url', url.replace(/^http/, 'ws'), '--name', 'honest', '--backend', 'wasm'];
  children.push(spawnArbor([...worker, '--cache-dir', join(dir, 'cache')], { ARBOR_TOKEN: TOKEN }));
  await waitFor('3 honest results accepted', () => (honestAccepted() >= 3 ? true : undefined), 120_000);
  refreshTargets();
  const { rssMb: rss, honestAccepted: honest } = run;
  rss.warm = rss.peak = rssMb();
  const sampler = setInterval(() => (rss.peak = Math.max(rss.peak, rssMb())), 200);
  const refresher = setInterval(() => coordinator?.child.exitCode === null && refreshTargets(), 2_000);
  try {
    const started = Date.now();
    honest.before = honestAccepted();
    run.stormRefusedAt = await connectStorm();
    const until = started + 150_000;
    [run.statusWhileSlow] = await Promise.all([
      slowRequests(url),
      ...Array.from({ length: LOOPS.ws }, (_, i) => wsLoop(i, until)),
      ...Array.from({ length: LOOPS.http }, (_, i) => httpLoop(i, until)),
    ]);
    run.seconds = (Date.now() - started) / 1000;
    honest.end = honestAccepted();
    await waitFor(
      'an honest result accepted after the fuzz',
      () => honestAccepted() > honest.end || undefined,
      60_000,
    );
    honest.after = honestAccepted();
    run.statusAfter = (await fetch(`${url}/v1/status`)).status;
    rss.after = rssMb();
    run.fuzzers = { ...query(db, FUZZERS)[0] };
    run.credited = { ...query(db, CREDITED)[0] };
  } finally {
    clearInterval(sampler);
    clearInterval(refresher);
  }
}

void describe('fuzz: 10,000 hostile inputs while an honest worker trains', { timeout: 280_000 }, () => {
  before(() =>
    fuzz().catch((error: Error) => (run.error = `${error.message}\n${coordinator?.stderr.slice(-1500)}`)),
  );
  after(async () => {
    for (const child of children) child.child.kill('SIGKILL');
    await Promise.all(children.map((child) => child.exited));
    rmSync(dir, { recursive: true, force: true });
  });

  void it('sends at least 10,000 seeded inputs', () => {
    const inputs = Object.fromEntries((Object.keys(counts) as Kind[]).map((kind) => [kind, total(kind)]));
    const { error, ...measured } = run;
    console.log(JSON.stringify({ seed: SEED, inputs, outcomes: counts, ...measured })); // for RELIABILITY.md
    console.log(JSON.stringify(Object.fromEntries(problems)));
    assert.equal(error, undefined);
    assert.ok(total('ws', 'http', 'raw', 'upgrade', 'slow') >= 10_000, JSON.stringify(inputs));
  });

  void it('never answers 500 or INTERNAL, leaves no input unanswered, and stays up', () => {
    assert.equal(run.error, undefined);
    assert.equal(coordinator?.child.exitCode, null, coordinator?.stderr.slice(-2000));
    assert.deepEqual(
      problemsOf(/INTERNAL|: 5\d\d|^(?!raw).*(no answer|stalled|closed without|refused with)/),
      [],
    );
    assert.equal(counts.slow['unanswered while trickling'], 3, 'the slow requests were still being read');
    assert.equal(run.statusWhileSlow, 200, 'GET /v1/status while bodies and headers trickle in');
    assert.equal(run.statusAfter, 200, 'GET /v1/status after the fuzz');
    assert.ok(run.stormRefusedAt !== undefined, 'the storm was refused (429) at last');
  });

  void it('gives no data without a token, however the path is spelled', async () => {
    assert.deepEqual(problemsOf(/without a token/), []);
    const [sha = '', unit = 'r0000-s0000'] = [targets.blobs[0], targets.units[0]];
    assert.match(sha, /^[0-9a-f]{64}$/, 'a blob that exists');
    const hex = (s: string) => `%${s.charCodeAt(0).toString(16)}${s.slice(1)}`;
    const blobs =
      '/v1/%62lobs/ /v1/%2562lobs/ /v1/%42LOBS/ /v1//blobs/ /v1/./blobs/ /v1/x/../blobs/ /%76%31/blobs/'
        .concat(' /v1%2fblobs%2f /v1/blobs/')
        .split(' ')
        .flatMap((prefix) => [`GET ${prefix}${sha}`, `HEAD ${prefix}${sha}`, `GET ${prefix}${hex(sha)}`]);
    const units = ['/v1/%75nits/UNIT/result', '/v1/units/UNIT/%72esult', `/v1/units/${hex(unit)}/result`];
    for (const request of [...blobs, ...units.map((path) => `PUT ${path.replace('UNIT', unit)}`)]) {
      const [method = '', path = ''] = request.split(' ');
      const body = Buffer.alloc(method === 'PUT' ? 8 : 0);
      const reply =
        (await exchangeHttp(
          gen.encodeRequest({ label: '', method, path, headers: {}, body }),
          false,
          '127.0.0.80',
        )) ?? '';
      record('http', `auth probe ${reply.slice(9, 12)}`, request);
      assert.match(reply, /^HTTP\/1\.1 40[14] /, `${request} without a token: ${reply.slice(0, 200)}`);
    }
  });

  void it('answers every control frame with a frame or close code from the catalogue', () => {
    assert.deepEqual(problemsOf(/^ws: /), []);
  });

  void it('answers every HTTP request with a catalogue error body', () => {
    assert.deepEqual(problemsOf(/^http: /), []);
  });

  void it('answers bytes that are not well-formed HTTP with a catalogue error body too', () => {
    assert.deepEqual(problemsOf(/^raw: /), []);
  });

  void it("keeps accepting the honest worker's results, credits no fuzzer, in bounded memory", () => {
    const { honestAccepted: honest, rssMb: rss } = run;
    assert.equal(run.error, undefined);
    assert.ok(
      honest.end > honest.before,
      `honest results accepted during the fuzz: ${JSON.stringify(honest)}`,
    );
    assert.ok(honest.after > honest.end, 'and after it');
    assert.deepEqual(run.fuzzers, { units: 0, credit: 0 }, 'a fuzzing worker earned something');
    assert.equal(run.credited['credited'], run.credited['accepted'], 'each accepted result credited once');
    assert.ok(rss.peak <= rss.warm + RSS_BOUND_MB, `peak VmRSS ${rss.peak} MB, ${rss.warm} MB after warm-up`);
  });
});
