/**
 * The /volunteer page: Start turns this tab into a worker (the loop runs in a Web Worker, so
 * the page stays responsive); Pause sends the steps done or hands the unit back.
 * `?backend=webgpu|webgl|wasm`, `?autostart=1` and `?token=` are for lab machines and tests.
 */
import { type PageCommand, type ThreadReport, isBrowserBackend } from './thread-messages.ts';

const params = new URLSearchParams(location.search);
const tokenKey = `arbor-token:${location.origin}`;
const nameKey = `arbor-name:${location.origin}`;
const $ = (id: string): HTMLElement => document.getElementById(id)!;
const show = (id: string, text: string): void => void ($(id).textContent = text);

const tokenInput = $('token') as HTMLInputElement;
const startButton = $('start') as HTMLButtonElement;
const pauseButton = $('pause') as HTMLButtonElement;
tokenInput.value = params.get('token') ?? localStorage.getItem(tokenKey) ?? '';
const name = localStorage.getItem(nameKey) ?? `browser-${Math.random().toString(16).slice(2, 8)}`;
localStorage.setItem(nameKey, name);
show('name', name);

const shareKey = `arbor-share:${location.origin}`;
const batteryKey = `arbor-battery:${location.origin}`;
const shareSelect = $('cpu-share') as HTMLSelectElement;
const batteryBox = $('battery-pause') as HTMLInputElement;
shareSelect.value = localStorage.getItem(shareKey) ?? '100';
batteryBox.checked = localStorage.getItem(batteryKey) !== 'off';
const share = (): number => Number(shareSelect.value) / 100;

const counts = { units: 0, rejected: 0, credit: 0 };
let thread: Worker | undefined;
let paused = false;
let working = false;
/** Paused by the page because the machine runs on battery, not by the volunteer. */
let pausedForBattery = false;
let battery: { charging: boolean; addEventListener(type: 'chargingchange', f: () => void): void } | undefined;

function applyBattery(): void {
  const discharging = battery !== undefined && !battery.charging && batteryBox.checked;
  if (discharging && working && !paused && !pausedForBattery) {
    pausedForBattery = true;
    log('info', 'on battery: paused until the machine is plugged in');
    thread?.postMessage({ type: 'pause' } satisfies PageCommand);
  } else if (!discharging && pausedForBattery) {
    pausedForBattery = false;
    log('info', 'plugged in: going on');
    thread?.postMessage({ type: 'resume' } satisfies PageCommand);
  }
}

async function watchBattery(): Promise<void> {
  const source = navigator as { getBattery?: () => Promise<NonNullable<typeof battery>> };
  if (source.getBattery === undefined) return;
  battery = await source.getBattery();
  battery.addEventListener('chargingchange', applyBattery);
  applyBattery();
}

function log(level: 'info' | 'warn', message: string): void {
  const item = document.createElement('li');
  item.className = level;
  item.textContent = `${new Date().toLocaleTimeString()} ${message}`;
  const list = $('log');
  list.prepend(item);
  while (list.children.length > 200) list.lastElementChild!.remove();
}

/** Open enrolment, as for CLI volunteers: a token issued once and kept for this coordinator. */
async function enrolledToken(): Promise<string | undefined> {
  const join = await fetch('/v1/join').catch(() => undefined);
  if (join?.ok !== true || ((await join.json()) as { enrolment?: unknown }).enrolment !== true)
    return undefined;
  const response = await fetch('/v1/enrol', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  if (!response.ok) throw new Error(`enrolment refused: ${(await response.text()).slice(0, 200)}`);
  const { token } = (await response.json()) as { token: string };
  localStorage.setItem(tokenKey, token);
  log('info', 'enrolled: this browser keeps its token for next time');
  return token;
}

function onReport(report: ThreadReport): void {
  switch (report.type) {
    case 'ready':
      show('backend', report.backend);
      show('speed', `${Math.round(report.samplesPerSecond).toLocaleString('en')} samples/s`);
      $('backend').title = Object.entries(report.measured)
        .map(([name, speed]) => `${name}: ${speed.toLocaleString('en')} samples/s`)
        .join(', ');
      $('backend').dataset['measured'] = JSON.stringify(report.measured);
      $('backend').dataset['numerics'] = report.numericsError.toExponential(2);
      for (const reason of report.skipped) log('warn', `skipped ${reason}`);
      break;
    case 'state':
      show('state', report.message === undefined ? report.state : `${report.state}: ${report.message}`);
      document.body.dataset['state'] = report.state;
      pauseButton.disabled = report.state !== 'working' && report.state !== 'paused';
      paused = report.state === 'paused';
      working = report.state === 'working';
      if (working) applyBattery();
      pauseButton.textContent = paused ? 'Resume' : 'Pause';
      if (report.state === 'failed' || report.state === 'done') pauseButton.disabled = true;
      break;
    case 'unit':
      show('unit', `${report.unit} (shard ${report.shard})`);
      show('saved', '–');
      break;
    case 'progress':
      ($('progress') as HTMLProgressElement).value = report.step / report.total;
      show('progress-text', `${report.step}/${report.total} steps · loss ${report.loss.toFixed(3)}`);
      break;
    case 'saved':
      show('saved', `${report.samples.toLocaleString('en')} samples of this unit`);
      break;
    case 'result':
      if (report.verdict === 'accepted') {
        counts.units++;
        counts.credit += report.samples;
      } else counts.rejected++;
      show('units-done', String(counts.units));
      show('credit', `${(report.standing?.credit ?? counts.credit).toLocaleString('en')} samples`);
      show('rejected', String(counts.rejected));
      if (report.standing !== undefined) {
        show('rank', `${report.standing.rank} of ${report.standing.volunteers} volunteers`);
        show('job-progress', `${(report.standing.jobProgress * 100).toFixed(1)}% trained`);
      }
      break;
    case 'log':
      log(report.level, report.message);
      break;
  }
}

async function start(): Promise<void> {
  startButton.disabled = true;
  tokenInput.disabled = true;
  const token = tokenInput.value.trim() || (await enrolledToken());
  if (token !== undefined && tokenInput.value.trim() !== '') localStorage.setItem(tokenKey, token);
  const backend = params.get('backend');
  if (backend !== null && !isBrowserBackend(backend))
    log('warn', `unknown backend '${backend}': choosing one`);
  thread = new Worker('/volunteer/thread.js');
  thread.onmessage = (event: MessageEvent<ThreadReport>) => onReport(event.data);
  thread.onerror = (event) => onReport({ type: 'state', state: 'failed', message: event.message });
  const command: PageCommand = {
    type: 'start',
    name,
    ...(token !== undefined ? { token } : {}),
    ...(isBrowserBackend(backend) ? { backend } : {}),
    share: share(),
  };
  thread.postMessage(command);
}

startButton.addEventListener('click', () => {
  start().catch((error: Error) => {
    onReport({ type: 'state', state: 'failed', message: error.message });
    startButton.disabled = false;
    tokenInput.disabled = false;
  });
});
pauseButton.addEventListener('click', () => {
  pausedForBattery = false;
  thread?.postMessage({ type: paused ? 'resume' : 'pause' } satisfies PageCommand);
});
shareSelect.addEventListener('change', () => {
  localStorage.setItem(shareKey, shareSelect.value);
  thread?.postMessage({ type: 'share', share: share() } satisfies PageCommand);
});
batteryBox.addEventListener('change', () => {
  localStorage.setItem(batteryKey, batteryBox.checked ? 'on' : 'off');
  applyBattery();
});
void watchBattery();
// Best effort: a closing tab's socket goes away with code 1001; the coordinator keeps the part
// of its unit saved in IndexedDB for the next visit to hand in, and gives the rest out again.
addEventListener('pagehide', () => thread?.postMessage({ type: 'pause' }));
if (params.get('autostart') === '1') startButton.click();
