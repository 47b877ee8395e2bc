/**
 * The dashboard in a real browser (Debian chromium through playwright-core) against a real
 * coordinator process with real worker processes; the JSON API checked against its schemas.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { type Browser, chromium, type Page } from 'playwright-core';
import {
  type Join,
  joinCommand,
  SeriesSchema,
  ShardSamplesSchema,
  type Shards,
  ShardsSchema,
  StatusSchema,
  type Workers,
  WorkersSchema,
} from '../../proto/dashboard.ts';
import { startSmallCoordinator } from '../helpers/small-job.ts';
import { selectBackend } from '../../shared/backend.ts';
import { coordinatorUrl, pollUntil, spawnArbor } from '../helpers/processes.ts';

const dir = mkdtempSync(join(tmpdir(), 'arbor-dash-'));
const ARTIFACTS = 'test-artifacts';
mkdirSync(ARTIFACTS, { recursive: true });
after(() => rmSync(dir, { recursive: true, force: true }));

const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];

async function getChecked<T extends TSchema>(url: string, schema: T): Promise<unknown> {
  const response = await fetch(url);
  assert.equal(response.status, 200, url);
  const body: unknown = await response.json();
  const firstError = [...Value.Errors(schema, body)][0];
  assert.equal(firstError, undefined, `${url}: ${firstError?.path} ${firstError?.message}`);
  return body;
}

const text = (page: Page, selector: string): Promise<string> => page.locator(selector).innerText();
const numberIn = async (page: Page, selector: string): Promise<number> =>
  Number((await text(page, selector)).replace(/[^0-9.]/g, ''));

/** The first `count` events of the server-sent event stream at `url`. */
async function readEventStream(
  url: string,
  count: number,
  lastEventId?: string,
): Promise<{ id: number; kind: string }[]> {
  const controller = new AbortController();
  const response = await fetch(url, {
    signal: controller.signal,
    headers: lastEventId ? { 'last-event-id': lastEventId } : {},
  });
  assert.equal(response.headers.get('content-type'), 'text/event-stream');
  const events: { id: number; kind: string }[] = [];
  const decoder = new TextDecoder();
  let buffered = '';
  const reader = response.body!.getReader();
  while (events.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    const blocks = buffered.split('\n\n');
    buffered = blocks.pop()!;
    for (const block of blocks) {
      const data = /^data: (.+)$/m.exec(block)?.[1];
      if (data !== undefined && events.length < count)
        events.push(JSON.parse(data) as { id: number; kind: string });
    }
  }
  controller.abort();
  return events;
}

/** Resolves once the page has rendered two more frames: resize observers and redraws have run. */
const settled = (page: Page): Promise<void> =>
  page.evaluate(
    () => new Promise<void>((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve()))),
  );

/** What sticks out sideways at the current viewport: the page itself, or a chart out of its box. */
async function overflow(page: Page): Promise<string[]> {
  await settled(page);
  return page.evaluate(() => {
    const found: string[] = [];
    const pageWidth = document.documentElement.scrollWidth;
    if (pageWidth > window.innerWidth) found.push(`the page is ${pageWidth} px wide`);
    for (const canvas of Array.from(document.querySelectorAll('.plot canvas'))) {
      const container = canvas.closest('.plot')!;
      const outer = container.getBoundingClientRect();
      const inner = canvas.getBoundingClientRect();
      if (inner.left < outer.left || inner.right > outer.right)
        found.push(`#${container.id}: a ${inner.width} px canvas in a ${outer.width} px box`);
    }
    return found;
  });
}

void describe('dashboard', { timeout: 400_000 }, () => {
  let browser: Browser | undefined;
  after(async () => browser?.close());

  /** The dashboard at `url` in one shared chromium, with every console error and page error collected. */
  async function openDashboard(
    url: string,
    viewport = { width: 1280, height: 1000 },
  ): Promise<{ page: Page; problems: string[] }> {
    browser ??= await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: CHROMIUM_FLAGS,
    });
    const page = await browser.newPage({ viewport });
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(url);
    return { page, problems };
  }

  void it('is live in a real browser: pretraining, empty before workers, shards and workers while training, done at the end', async (t) => {
    // The browser is up before the coordinator starts, so that its few seconds of pretraining are seen.
    const { page, problems } = await openDashboard('about:blank');
    const coordinator = spawnArbor([
      'coordinator',
      ...['--data', 'mnist', '--depth', '4', '--frozen', '2', '--leaf', '8', '--pretrain-epochs', '2'],
      ...['--shard-epochs', '6', '--local-epochs', '1', '--eval-every', '2'],
      ...['--top', 'slow', '--reroute-every', '3'],
      ...['--db', join(dir, 'dash.db'), '--port', '0'],
    ]);
    t.after(() => coordinator.child.kill());
    const url = await coordinatorUrl(coordinator);
    await page.goto(url);

    const pretraining = await pollUntil('pretraining progress in the header', async () => {
      const shown = await text(page, '#progress-text');
      if (shown.startsWith('pretraining epoch')) return shown;
      const phase = await text(page, '#phase');
      if (phase === 'routing' || phase === 'training')
        throw new Error(`pretraining ended unseen; the header showed "${shown}"`);
      return undefined;
    });
    assert.match(pretraining, /^pretraining epoch [12] of 2 · \d{1,3}%$/);

    // Before any worker: the routed shards show, the worker table is in its empty state.
    await pollUntil('the shards to be drawn', async () =>
      (await page.locator('#shards .shard').count()) === 4 ? true : undefined,
    );
    assert.equal(await text(page, '#phase'), 'training');
    await pollUntil('both pretraining epochs in the event list', async () => {
      const shown = await text(page, '#events');
      return shown.includes('pretraining epoch 1 of 2 · soft routing') &&
        shown.includes('pretraining epoch 2 of 2 · hardening the routing')
        ? true
        : undefined;
    });
    assert.match(await text(page, '#workers tbody'), /no worker has connected yet/);
    assert.equal(await numberIn(page, '#accepted'), 0);
    assert.equal((await page.locator('#gallery canvas').count()) > 0, true, 'real inputs shown per shard');
    const routed = (await getChecked(`${url}/v1/shards`, ShardsSchema)) as Shards;
    const classes = routed.shards[0]!.class_mix.length;
    assert.equal(
      await page.locator('#mix-legend .legend-item').count(),
      classes,
      'one legend entry per class',
    );
    assert.equal(await text(page, '#mix-legend .legend-item[data-class="3"]'), 'digit 3', 'classes by name');
    await pollUntil('the class-mix bars', async () =>
      (await page.locator('#gallery .mix span').count()) > 0 ? true : undefined,
    );
    const colours = (selector: string) =>
      page.locator(selector).evaluateAll((nodes) => nodes.map((n) => getComputedStyle(n).backgroundColor));
    assert.deepEqual(
      await colours('#mix-legend .swatch'),
      await colours('#gallery .shard-gallery:first-child .mix span'),
      'the legend has the colours of the bars, in class order',
    );
    const joinShown = await pollUntil('the join command', async () => {
      const shown = await text(page, '#join-command');
      return shown.startsWith('node -e') ? shown : undefined;
    });
    const joinInfo = (await (await fetch(`${url}/v1/join`)).json()) as Join;
    assert.equal(joinShown, joinCommand(url, joinInfo), 'the page and the CLI print the same command');
    const commandBox = await page.locator('#join-command').boundingBox();
    assert.ok(commandBox !== null && commandBox.height < 40, 'the command stays on one line');
    await page.click('#copy-join');
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-empty.png'), fullPage: true });

    const ws = url.replace('http', 'ws');
    const workers = ['alpha', 'beta'].map((name) => spawnArbor(['worker', '--url', ws, '--name', name]));
    t.after(() => workers.forEach((worker) => worker.child.kill()));
    await pollUntil('both workers listed', async () =>
      (await page.locator('#workers tbody tr[data-worker]').count()) === 2 ? true : undefined,
    );
    const eventList = await pollUntil('a unit leased to a volunteer by name in the event list', async () => {
      const shown = await text(page, '#events');
      return /leased (alpha|beta) · /.test(shown) ? shown : undefined;
    });
    const volunteers = (await getChecked(`${url}/v1/workers`, WorkersSchema)) as Workers;
    for (const { id } of volunteers.workers)
      assert.ok(!eventList.includes(id), `events name ${id} by its id`);
    const firstAccepted = await pollUntil('a first merged result', async () => {
      const n = await numberIn(page, '#accepted');
      return n > 0 ? n : undefined;
    });
    const moved = await pollUntil('the merged count to move on without a reload', async () => {
      const n = await numberIn(page, '#accepted');
      return n > firstAccepted ? n : undefined;
    });
    assert.ok(moved > firstAccepted);
    assert.match(await text(page, '#acc'), /^\d+\.\d\d%$/, 'an accuracy is shown once evaluated');
    assert.ok((await page.locator('#plot-acc canvas').count()) > 0, 'the accuracy plot is drawn');
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-training.png'), fullPage: true });

    // On a phone: opened at 420 px, and this page narrowed to it, nothing sticks out sideways.
    const phone = await openDashboard(url, { width: 420, height: 900 });
    await pollUntil('the accuracy plot at 420 px', async () =>
      (await phone.page.locator('#plot-acc canvas').count()) > 0 ? true : undefined,
    );
    assert.deepEqual(await overflow(phone.page), [], 'opened at 420 px');
    await pollUntil('the volunteers at 420 px', async () =>
      (await phone.page.locator('#workers tr[data-worker]').count()) > 0 ? true : undefined,
    );
    assert.equal(await phone.page.locator('.scroll-hint').isVisible(), true, 'the table says it scrolls');
    await phone.page.screenshot({ path: join(ARTIFACTS, 'dashboard-420.png'), fullPage: true });
    await phone.page.close();
    assert.deepEqual(phone.problems, [], 'no errors in the browser console at 420 px');
    await page.setViewportSize({ width: 420, height: 900 });
    assert.deepEqual(await overflow(page), [], 'narrowed to 420 px');
    await page.setViewportSize({ width: 1280, height: 1000 });
    await pollUntil('the scroll hint gone at 1280 px', async () =>
      (await page.locator('.scroll-hint').isVisible()) ? undefined : true,
    );

    // The JSON API behind the page, against its schemas.
    const status = (await getChecked(`${url}/v1/status`, StatusSchema)) as { results: { accepted: number } };
    assert.ok(status.results.accepted >= firstAccepted);
    await getChecked(`${url}/v1/shards`, ShardsSchema);
    await getChecked(`${url}/v1/shards/0/samples`, ShardSamplesSchema);
    await getChecked(`${url}/v1/workers?offset=0&limit=1`, WorkersSchema);
    await getChecked(`${url}/v1/series`, SeriesSchema);
    assert.equal((await fetch(`${url}/v1/workers?limit=100000`)).status, 400, 'bad page size refused');
    assert.equal((await fetch(`${url}/v1/shards/99/samples`)).status, 404);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /^arbor_results_total\{status="accepted"\} [1-9]/m);
    assert.match(metrics, /^arbor_workers_connected 2$/m);
    const events = await readEventStream(`${url}/v1/events?after=0`, 5);
    assert.deepEqual(
      events.map((e) => e.id),
      [...events.map((e) => e.id)].sort((a, b) => a - b),
      'events arrive in order',
    );
    assert.ok(
      events.some((e) => e.kind === 'phase'),
      'the stream replays the phase changes',
    );
    const resumed = await readEventStream(`${url}/v1/events`, 1, String(events[2]!.id));
    assert.equal(resumed[0]!.id, events[3]!.id, 'Last-Event-ID resumes after that event');

    await pollUntil(
      'the job to finish',
      async () => ((await text(page, '#phase')) === 'done' ? true : undefined),
      300_000,
    );
    await pollUntil('the final numbers', async () =>
      (await text(page, '#progress-text')) === 'finished' ? true : undefined,
    );
    const shardsDone = await page.locator('#shards .shard.done').count();
    assert.equal(shardsDone, 4, 'every shard shows its budget done');
    assert.equal(await page.locator('#join').isVisible(), false, 'a finished job invites no more volunteers');
    // The slow top moved: its re-routes plotted, its nodes marked with their last update.
    const series = (await getChecked(`${url}/v1/series`, SeriesSchema)) as { top: { reroutes: unknown[] } };
    assert.ok(series.top.reroutes.length > 0, 're-routed during the job');
    assert.equal(await page.locator('#top-plots').isVisible(), true);
    assert.ok((await page.locator('#plot-migrated canvas').count()) > 0, 'migrated samples plotted');
    assert.ok((await page.locator('#plot-imbalance canvas').count()) > 0, 'imbalance plotted');
    // The page's own uPlot instance: its time axis spans minutes, not the years uPlot gives one point.
    const span = (await page.evaluate(
      "(() => { const x = state.plots['plot-migrated'].plot.scales.x; return x.max - x.min; })()",
    )) as number;
    assert.ok(span > 0 && span < 3600, `the re-route plot's time axis spans ${span} s`);
    assert.ok(
      (await page.locator('#tree circle[data-update]').count()) > 0,
      'top nodes show their last update',
    );
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-done.png'), fullPage: true });
    assert.deepEqual(problems, [], 'no errors in the browser console');

    for (const worker of workers) assert.equal(await worker.exited, 0, worker.stderr.slice(-2000));
    coordinator.child.kill('SIGTERM');
    await coordinator.exited;
  });

  void it('stays usable at 256 shards and 1,000 volunteers: a dense shard grid and paged workers', async () => {
    await selectBackend('wasm');
    const small = await startSmallCoordinator({ settings: { depth: 9, frozen: 8, leaf: 2 } });
    const { coordinator } = small;
    try {
      for (let i = 0; i < 1000; i++)
        coordinator.store.upsertWorker({
          id: `w-${String(i).padStart(4, '0')}`,
          name: `volunteer-${i}`,
          tokenHash: '',
          backend: 'wasm',
          lastSeenMs: Date.now(),
        });
      const { page, problems } = await openDashboard(coordinator.url);
      await pollUntil('256 shard boxes', async () =>
        (await page.locator('#shards.dense .shard').count()) === 256 ? true : undefined,
      );
      assert.equal(
        await page.locator('#workers tbody tr[data-worker]').count(),
        50,
        'one page of volunteers',
      );
      assert.equal(await text(page, '#page'), '1–50 of 1000');
      await page.click('#next');
      await pollUntil('the second page', async () =>
        (await text(page, '#page')) === '51–100 of 1000' ? true : undefined,
      );
      assert.equal(
        await page.locator('#gallery .shard-gallery').count(),
        8,
        'the gallery shows a handful of shards',
      );
      await page.click('#shards .shard[data-shard="200"]');
      await pollUntil('the chosen shard in the gallery', async () =>
        (await page.locator('#gallery .shard-gallery[data-shard="200"]').count()) === 1 ? true : undefined,
      );
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-256-shards.png'), fullPage: true });
      await page.setViewportSize({ width: 420, height: 900 });
      assert.deepEqual(await overflow(page), [], 'the big tree and grid fit 420 px');
      assert.deepEqual(problems, [], 'no errors in the browser console');
      await page.close();
    } finally {
      await small.close();
    }
  });
});
