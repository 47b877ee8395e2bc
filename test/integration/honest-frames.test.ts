/**
 * Everything an honest worker sends passes the coordinator's parsers. The real volunteer
 * loop (the CLI's; the browser tab runs the same loop) trains short jobs against a real
 * coordinator on loopback in every mode — a frozen and a slow top, each through its soft,
 * hardening and hard-leaves phases, a unit stopped halfway (partial result) and one handed
 * back before its first step — and every frame, result header and enrolment body it sent
 * is parsed again here exactly as the coordinator parses it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { before, describe, it } from 'node:test';
import pino from 'pino';
import { MAX_FRAME_BYTES } from '../../coordinator/http/worker-socket.ts';
import { WORKER_MESSAGES, type WorkerMessage } from '../../proto/messages.ts';
import { parseEnrolRequest, parseResultMetrics, parseWorkerMessage } from '../../proto/parse.ts';
import { HEADERS, ROUTES } from '../../proto/routes.ts';
import { selectBackend } from '../../shared/backend.ts';
import { BlobCache } from '../../worker/blob-cache.ts';
import { CoordinatorConnection } from '../../worker/connection.ts';
import { enrolledToken } from '../../worker/enrolment.ts';
import { runVolunteer } from '../../worker/volunteer-loop.ts';
import { type SmallCoordinator, startSmallCoordinator } from '../helpers/small-job.ts';

/** What one worker sent: control frames, result metrics headers, enrolment bodies. */
interface Sent {
  readonly frames: WorkerMessage[];
  readonly metrics: string[];
  readonly enrolments: string[];
  readonly warnings: string[];
  readonly said: string[];
  readonly phases: Set<string>;
}

const newSent = (): Sent => ({
  frames: [],
  metrics: [],
  enrolments: [],
  warnings: [],
  said: [],
  phases: new Set(),
});

/** Records the bodies and headers of the worker's own HTTP requests, then sends them on. */
function recordFetch(sent: Sent): () => void {
  const real = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    const headers = new Headers(init?.headers);
    const metrics = headers.get(HEADERS.metrics);
    if (metrics !== null) sent.metrics.push(metrics);
    const url = input instanceof Request ? input.url : input.toString();
    if (url.endsWith(ROUTES.enrol) && typeof init?.body === 'string') sent.enrolments.push(init.body);
    return real(input, init);
  };
  return () => (globalThis.fetch = real);
}

/** A pino logger whose messages land in `sent.said`, warnings also in `sent.warnings`. */
function recordingLog(sent: Sent): pino.Logger {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const entry = JSON.parse(chunk.toString()) as { level: number; msg: string };
      if (entry.level >= 40) sent.warnings.push(entry.msg);
      sent.said.push(entry.msg);
      done();
    },
  });
  return pino({ level: 'info' }, sink);
}

interface Run {
  readonly sent: Sent;
  readonly end: string;
}

/** The real volunteer loop, its control frames recorded on their way out. */
async function volunteer(
  small: SmallCoordinator,
  name: string,
  options: {
    stopWhen?: 'assigned' | 'mid-unit';
    token?: string;
    /** Rewrites frames on their way out, to play a worker with a bug. */
    rewrite?: (message: WorkerMessage) => WorkerMessage;
  } = {},
): Promise<Run> {
  const sent = newSent();
  const restore = recordFetch(sent);
  const stop = new AbortController();
  const dir = mkdtempSync(join(tmpdir(), 'arbor-frames-'));
  try {
    const log = recordingLog(sent);
    const token = options.token ?? (await enrolledToken(small.wsUrl, name, join(dir, 'tokens.json'), log));
    const summary = await runVolunteer({
      url: small.wsUrl,
      ...(token !== undefined ? { token } : {}),
      name,
      backend: 'wasm',
      gpu: false,
      threads: 1,
      samplesPerSecond: 3000,
      log,
      blobs: new BlobCache(small.coordinator.url, token),
      signal: stop.signal,
      reconnect: { initialMs: 50, maxMs: 200 },
      connect: async (url, bearer) => {
        const connection = await CoordinatorConnection.open(url, bearer);
        const send = connection.send.bind(connection);
        connection.send = (message) => {
          sent.frames.push(message);
          send(options.rewrite?.(message) ?? message);
        };
        const next = connection.next.bind(connection);
        connection.next = async () => {
          const message = await next();
          if (message.type === 'assign' && options.stopWhen === 'assigned') stop.abort();
          return message;
        };
        return connection;
      },
      onUnitProgress: (_unit, report) => {
        sent.phases.add(report.phase);
        if (options.stopWhen === 'mid-unit' && report.epoch * report.stepsPerEpoch + report.stepInEpoch > 20)
          stop.abort();
      },
    });
    return { sent, end: summary.end };
  } finally {
    restore();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every recorded message, parsed by the coordinator's own parsers: none may be refused. */
function assertParses(sent: Sent): void {
  for (const frame of sent.frames)
    assert.doesNotThrow(
      () => parseWorkerMessage(Buffer.from(JSON.stringify(frame)), MAX_FRAME_BYTES),
      `refused frame ${JSON.stringify(frame).slice(0, 300)}`,
    );
  for (const metrics of sent.metrics) assert.doesNotThrow(() => parseResultMetrics(metrics), metrics);
  for (const body of sent.enrolments) assert.doesNotThrow(() => parseEnrolRequest(body), body);
  assert.deepEqual(
    sent.warnings.filter((w) => w.startsWith('coordinator refused')),
    [],
    'the coordinator refused none of it',
  );
}

const SHORT = {
  shard_epochs: 3,
  local_epochs: 1,
  unit_seconds: 0.4,
  heartbeat_ms: 50,
  eval_every: 50,
};

const seen = new Set<string>();
const note = (run: Run) => run.sent.frames.forEach((f) => seen.add(f.type));

void describe('an honest worker is never refused', { timeout: 600_000 }, () => {
  before(async () => {
    await selectBackend('wasm');
  });

  for (const top of ['frozen', 'slow'] as const) {
    void it(`sends only parseable messages through a whole job, top ${top}, every phase`, async () => {
      const small = await startSmallCoordinator({
        settings: {
          ...SHORT,
          depth: 4,
          frozen: 2,
          ...(top === 'slow'
            ? { top: { mode: 'slow', lr: [1], reroute_every: 2, tolerance: 100, balance: 100 } }
            : {}),
        },
        access: { enrolment: true },
      });
      try {
        const run = await volunteer(small, `honest-${top}`);
        note(run);
        assert.equal(run.end, 'done');
        assertParses(run.sent);
        assert.deepEqual([...run.sent.phases].sort(), ['hard-leaves', 'harden', 'soft']);
        const heartbeats = run.sent.frames.filter((f) => f.type === 'heartbeat');
        assert.ok(
          heartbeats.some((h) => h.loss !== undefined),
          `heartbeats carry the loss (${heartbeats.length} sent)`,
        );
        assert.ok(run.sent.metrics.length > 0 && run.sent.enrolments.length === 1);
        if (top === 'slow') {
          const activity = small.coordinator.store.getTop();
          assert.ok((activity?.version ?? 0) > 0, 'the top moved');
        }
      } finally {
        await small.close();
      }
    });
  }

  void it('sends only parseable messages when it stops mid-unit (partial result) or before a step (release)', async () => {
    const small = await startSmallCoordinator({
      settings: { ...SHORT, local_epochs: 3, top: { mode: 'slow', tolerance: 100 } },
      access: { enrolment: true },
    });
    try {
      const partial = await volunteer(small, 'leaving-mid-unit', { stopWhen: 'mid-unit' });
      const handedBack = await volunteer(small, 'leaving-at-once', { stopWhen: 'assigned' });
      for (const run of [partial, handedBack]) {
        note(run);
        assert.equal(run.end, 'stopped');
        assertParses(run.sent);
      }
      assert.ok(partial.sent.said.includes('partial unit sent'), partial.sent.said.join('; '));
      assert.ok(handedBack.sent.frames.some((f) => f.type === 'release'));
    } finally {
      await small.close();
    }
  });

  void it('a refused frame costs a reconnect, not the volunteer: it says why and goes on to the end', async () => {
    const small = await startSmallCoordinator({ settings: SHORT, access: { enrolment: true } });
    try {
      // The first heartbeat on each of its first two connections breaks the schema.
      let hellos = 0;
      let brokenOn = 0;
      const run = await volunteer(small, 'buggy', {
        rewrite: (message) => {
          if (message.type === 'hello') hellos++;
          if (message.type !== 'heartbeat' || hellos > 2 || brokenOn === hellos) return message;
          brokenOn = hellos;
          return { ...message, loss: -1 };
        },
      });
      assert.equal(run.end, 'done');
      const refusals = run.sent.warnings.filter((w) => w.startsWith('coordinator refused'));
      assert.equal(refusals.length, 2, run.sent.warnings.join('; '));
      assert.match(refusals[0]!, /^coordinator refused: BAD_MESSAGE heartbeat: \/loss: .*; reconnecting$/);
      assert.equal(run.sent.frames.filter((f) => f.type === 'hello').length, 3, 'it reconnected twice');
    } finally {
      await small.close();
    }
  });

  void it('between them, the runs above sent every type of frame a worker has', () => {
    assert.deepEqual(
      [...seen].sort(),
      Object.values(WORKER_MESSAGES)
        .map((m) => m.properties.type.const)
        .sort(),
    );
  });
});
