/**
 * The Web Worker behind /volunteer: picks the fastest backend by measuring each, then runs the same
 * volunteer loop as the CLI until the job is done or the page pauses it.
 */
import { runVolunteer } from '../volunteer-loop.ts';
import type { VolunteerLog } from '../volunteer-ports.ts';
import { type BrowserBackendChoice, selectBrowserBackend } from './browser-backend.ts';
import { BrowserSocket } from './browser-socket.ts';
import { MemoryBlobs } from './memory-blobs.ts';
import { IndexedDbCheckpoints, handInLeftover } from './unit-checkpoints.ts';
import { Pacer } from '../pacer.ts';
import { WakeWatch } from '../wake-watch.ts';
import type { PageCommand, ThreadReport } from './thread-messages.ts';

const post = (report: ThreadReport): void => self.postMessage(report);
const origin = self.location.origin;
const coordinatorUrl = origin.replace(/^http/, 'ws');

function pageLog(fields: object = {}): VolunteerLog {
  const line = (fieldsOrMessage: object | string, message?: string): string => {
    const extra = typeof fieldsOrMessage === 'string' ? {} : fieldsOrMessage;
    const text = typeof fieldsOrMessage === 'string' ? fieldsOrMessage : (message ?? '');
    const details = Object.entries({ ...fields, ...extra })
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(' ');
    return details === '' ? text : `${text} (${details})`;
  };
  return {
    info: (f, m) => post({ type: 'log', level: 'info', message: line(f, m) }),
    warn: (f, m) => post({ type: 'log', level: 'warn', message: line(f, m) }),
    child: (more) => pageLog({ ...fields, ...more }),
  };
}

let settings: Extract<PageCommand, { type: 'start' }> | undefined;
let backend: BrowserBackendChoice | undefined;
/** The unit the page shows, posted when it changes. */
let shownUnit: string | undefined;
let controller: AbortController | undefined;
let running = false;
const checkpoints = new IndexedDbCheckpoints();
/** The volunteer's share of a core: a tab's training is busy the whole of each stretch. */
const pacer = new Pacer(
  {
    now: () => performance.now(),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    cpu: () => performance.now(),
  },
  () => 0,
);

async function work(): Promise<void> {
  if (settings === undefined || backend === undefined || running) return;
  running = true;
  controller = new AbortController();
  post({ type: 'state', state: 'working' });
  const summary = await runVolunteer({
    url: coordinatorUrl,
    ...(settings.token !== undefined ? { token: settings.token } : {}),
    name: settings.name,
    backend: backend.name,
    gpu: backend.gpu,
    threads: 1,
    samplesPerSecond: backend.samplesPerSecond,
    log: pageLog(),
    signal: controller.signal,
    pacing: new WakeWatch(pacer, Date.now, (sleptMs) =>
      post({
        type: 'log',
        level: 'warn',
        message: `the machine slept ${Math.round(sleptMs / 1000)} s: handing in what the unit trained`,
      }),
    ),
    connect: (url, token) => BrowserSocket.open(url, token),
    blobs: new MemoryBlobs(origin, settings.token),
    checkpoints: {
      everyMs: checkpoints.everyMs,
      clear: () => checkpoints.clear(),
      save: async (checkpoint) => {
        await checkpoints.save(checkpoint);
        post({ type: 'saved', samples: checkpoint.metrics.samples });
      },
    },
    onUnitProgress: (unit, report, total) => {
      const step = report.epoch * report.stepsPerEpoch + report.stepInEpoch;
      post({ type: 'progress', step: Math.min(step, total), total, loss: report.loss });
      if (unit.unit_id !== shownUnit) {
        shownUnit = unit.unit_id;
        post({ type: 'unit', unit: unit.unit_id, shard: unit.shard });
      }
    },
    onResult: (_unit, verdict, samples, standing) =>
      post({ type: 'result', verdict, samples, ...(standing !== undefined ? { standing } : {}) }),
  });
  running = false;
  post({ type: 'state', state: summary.end === 'done' ? 'done' : 'paused' });
}

/** A tab closed mid-unit left a checkpoint: it goes in first, as a partial result. */
async function handInLeftoverUnit(token: string | undefined): Promise<void> {
  post({ type: 'state', state: 'starting', message: 'handing in the unit left by the last visit' });
  const log = pageLog();
  const answer = await handInLeftover(checkpoints, {
    base: origin,
    ...(token !== undefined ? { token } : {}),
    log,
  });
  if (answer === undefined) return;
  log.info(
    { unit: answer.unit, samples: answer.samples, verdict: answer.status },
    'the unit left by the last visit was handed in',
  );
  post({
    type: 'result',
    verdict: answer.status,
    samples: answer.samples,
    ...(answer.standing !== undefined ? { standing: answer.standing } : {}),
  });
}

async function start(command: Extract<PageCommand, { type: 'start' }>): Promise<void> {
  settings = command;
  pacer.limit(command.share);
  await handInLeftoverUnit(command.token);
  post({ type: 'state', state: 'starting', message: 'choosing a backend' });
  const choice = await selectBrowserBackend(`${origin}/volunteer/wasm/`, command.backend, (message) =>
    post({ type: 'state', state: 'starting', message }),
  );
  backend = choice;
  post({
    type: 'ready',
    backend: choice.name,
    skipped: choice.skipped,
    numericsError: choice.numerics.relativeError,
    samplesPerSecond: choice.samplesPerSecond,
    measured: choice.measured,
  });
  await work();
}

const fail = (error: unknown): void => {
  running = false;
  post({ type: 'state', state: 'failed', message: (error as Error).message ?? String(error) });
};

self.onmessage = (event: MessageEvent<PageCommand>) => {
  const command = event.data;
  if (command.type === 'start' && settings === undefined) start(command).catch(fail);
  else if (command.type === 'pause' && controller !== undefined && !controller.signal.aborted) {
    post({ type: 'state', state: 'pausing', message: 'sending the steps done, or handing the unit back' });
    controller.abort();
  } else if (command.type === 'resume' && controller?.signal.aborted === true) work().catch(fail);
  else if (command.type === 'share') {
    pacer.limit(command.share);
    post({
      type: 'log',
      level: 'info',
      message: `training with ${Math.round(command.share * 100)}% of a core`,
    });
  }
};
