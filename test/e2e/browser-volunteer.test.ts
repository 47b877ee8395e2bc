/**
 * The browser volunteer: /volunteer in headless Chromium (WebGPU and WebGL2 on SwiftShader)
 * against a real coordinator process, beside a CLI volunteer; pause, resume and a closed tab.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import type { Status, Workers } from '../../proto/dashboard.ts';
import { CHROMIUM_GPU_FLAGS, CHROMIUM_PATH } from '../../bench/browser/browser-lab.ts';
import { query } from '../helpers/job-database.ts';
import { type Spawned, coordinatorUrl, pollUntil, spawnArbor } from '../helpers/processes.ts';
import { PROCESS_JOB } from '../helpers/process-job.ts';

const dir = mkdtempSync(join(tmpdir(), 'arbor-browser-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const JOB = PROCESS_JOB;

const until = <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 180_000): Promise<T> =>
  pollUntil(what, probe, timeoutMs);

const getJson = async <T>(url: string): Promise<T> => (await (await fetch(url)).json()) as T;
const text = (page: Page, selector: string): Promise<string> => page.locator(selector).innerText();

function startCoordinator(
  name: string,
  args: readonly string[],
): { coordinator: Spawned; url: Promise<string> } {
  const coordinator = spawnArbor([
    'coordinator',
    ...JOB,
    ...args,
    '--db',
    join(dir, `${name}.db`),
    '--port',
    '0',
  ]);
  return { coordinator, url: coordinatorUrl(coordinator) };
}

const volunteerCredit = async (url: string): Promise<number> =>
  (await getJson<Workers>(`${url}/v1/workers`)).workers.reduce((sum, w) => sum + w.credit, 0);

async function openVolunteer(
  browser: Browser | BrowserContext,
  url: string,
  problems: string[],
  before?: (page: Page) => Promise<void>,
): Promise<Page> {
  const page = await browser.newPage();
  page.on('pageerror', (error) => problems.push(error.message));
  await before?.(page);
  await page.goto(url);
  return page;
}

/** This machine has no battery: the page is given one, plugged in, that the test can unplug. */
async function fakeBattery(page: Page): Promise<void> {
  // A string, not a function: what tsx compiles a function into may not run in the page.
  await page.addInitScript(`{
    const listeners = [];
    const battery = { charging: true, addEventListener: (type, listener) => listeners.push(listener) };
    navigator.getBattery = () => Promise.resolve(battery);
    window.setCharging = (charging) => {
      battery.charging = charging;
      for (const listener of listeners) listener();
    };
  }`);
}
const setCharging = (page: Page, charging: boolean): Promise<void> =>
  page.evaluate((on) => (window as unknown as { setCharging(on: boolean): void }).setCharging(on), charging);

void describe('browser volunteer', { timeout: 600_000 }, () => {
  let browser: Browser | undefined;
  after(async () => browser?.close());
  const launch = async (): Promise<Browser> =>
    (browser ??= await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_GPU_FLAGS }));

  void it('tabs on WebGPU and on WebGL train accepted units beside a CLI volunteer until the job is done', async (t) => {
    const { coordinator, url: listening } = startCoordinator('side-by-side', [
      ...['--shard-epochs', '4', '--local-epochs', '1', '--token', 'tab-secret'],
    ]);
    t.after(() => coordinator.child.kill());
    const url = await listening;
    const problems: string[] = [];
    const b = await launch();
    const tabs = await Promise.all(
      (['webgpu', 'webgl'] as const).map(async (backend) => ({
        backend,
        page: await openVolunteer(
          b,
          `${url}/volunteer?backend=${backend}&autostart=1&token=tab-secret`,
          problems,
        ),
      })),
    );
    for (const { backend, page } of tabs) {
      const chosen = await until(`the ${backend} tab to choose its backend`, async () => {
        const shown = await text(page, '#backend');
        return shown === '–' ? undefined : shown;
      });
      assert.equal(chosen, backend, `the ${backend} tab fell back: ${await text(page, '#log')}`);
      const numerics = Number(await page.locator('#backend').getAttribute('data-numerics'));
      assert.ok(numerics < 1e-3, `${backend} trains ${numerics} away from the CPU reference`);
      await until(`a unit accepted from the ${backend} tab`, async () =>
        Number(await text(page, '#units-done')) >= 1 ? true : undefined,
      );
    }
    const worker = spawnArbor(['worker', '--url', url, '--token', 'tab-secret', '--backend', 'wasm']);
    t.after(() => worker.child.kill());
    await until('the job to finish', async () =>
      (await getJson<Status>(`${url}/v1/status`)).phase === 'done' ? true : undefined,
    );
    const { workers } = await getJson<Workers>(`${url}/v1/workers`);
    for (const backend of ['webgpu', 'webgl', 'wasm']) {
      const volunteer = workers.find((w) => w.backend === backend);
      assert.ok(
        volunteer && volunteer.units_done >= 1,
        `no accepted unit on ${backend}: ${JSON.stringify(workers)}`,
      );
    }
    // A slow tab's unit may come back after the CLI volunteer has moved its shard on and be
    // refused as worse than the shard's best; nothing else may refuse a tab's result.
    const rules = (coordinator.stdout + coordinator.stderr)
      .split('\n')
      .filter((line) => line.includes('"result rejected"'))
      .map((line) => (JSON.parse(line) as { rule: string }).rule);
    assert.deepEqual(
      rules.filter((rule) => rule !== 'validation-loss'),
      [],
    );
    for (const { page } of tabs) {
      await until('the tab to say the job is done', async () =>
        (await page.locator('body').getAttribute('data-state')) === 'done' ? true : undefined,
      );
    }
    const dashboard = await b.newPage();
    await dashboard.goto(url);
    const table = await until('the volunteer table', async () => {
      const shown = await text(dashboard, '#workers');
      return shown.includes('webgpu') && shown.includes('webgl') ? shown : undefined;
    });
    assert.match(table, /wasm/);
    assert.equal(await dashboard.locator('#join-browser').getAttribute('href'), '/volunteer');
    assert.deepEqual(problems, []);
    await Promise.all([...tabs.map(({ page }) => page.close()), dashboard.close()]);
  });

  void it('enrols itself, picks the fastest backend by measuring, shows its unit, keeps to its limits, pauses and resumes, and a closed tab hands in its saved part of the unit on the next visit while the rest goes out at once', async (t) => {
    const { coordinator, url: listening } = startCoordinator('pause', [
      ...['--shard-epochs', '400', '--local-epochs', '40', '--lease-ms', '600000', '--enrolment', 'open'],
    ]);
    t.after(() => coordinator.child.kill());
    const url = await listening;
    const problems: string[] = [];
    const opened = performance.now();
    const db = join(dir, 'pause.db');
    // One context for both visits: the next visit finds the closed tab's checkpoint in IndexedDB.
    const context = await (await launch()).newContext();
    t.after(() => context.close());
    const page = await openVolunteer(context, `${url}/volunteer?autostart=1`, problems, fakeBattery);
    await until('a backend to be chosen', async () =>
      (await text(page, '#backend')) === '–' ? undefined : true,
    );
    t.diagnostic(
      `backend chosen ${((performance.now() - opened) / 1000).toFixed(1)} s after the page opened`,
    );
    const leased = async (): Promise<number> =>
      (await getJson<Status>(`${url}/v1/status`)).units['leased'] ?? 0;
    const state = async (): Promise<string | null> => page.locator('body').getAttribute('data-state');

    await until('a unit in training', async () =>
      (await leased()) === 1 && (await text(page, '#progress-text')) !== '' ? true : undefined,
    );
    assert.match(await text(page, '#log'), /enrolled/);
    // WebGPU and WebGL here run on SwiftShader, a GPU emulated on this CPU: wasm is faster.
    assert.equal(await text(page, '#backend'), 'wasm', await text(page, '#log'));
    const measured = JSON.parse(
      (await page.locator('#backend').getAttribute('data-measured')) ?? '{}',
    ) as Record<string, number>;
    assert.ok(measured['wasm']! > 0, JSON.stringify(measured));
    assert.match(await text(page, '#log'), /skipped webgpu: a GPU emulated on the CPU \(google swiftshader/);
    assert.match(await text(page, '#log'), /skipped webgl: a GPU emulated on the CPU \(ANGLE .*SwiftShader/);
    const unit = await until('the current unit to be shown', async () => {
      const shown = await text(page, '#unit');
      return shown === '–' ? undefined : shown;
    });
    const leasedUnits = query(db, "SELECT id FROM units WHERE state = 'leased'");
    assert.deepEqual(
      leasedUnits.map((row) => row['id']),
      [unit.split(' ')[0]],
    );
    // The volunteer's limits: a share of a core, and no training on battery.
    await page.selectOption('#cpu-share', '50');
    await until('the share to be taken', async () =>
      /training with 50% of a core/.test(await text(page, '#log')) ? true : undefined,
    );
    await setCharging(page, false);
    await until('the tab to pause on battery', async () => ((await state()) === 'paused' ? true : undefined));
    assert.equal(await leased(), 0, 'a tab paused on battery holds no lease');
    await setCharging(page, true);
    await until('the tab to go on once plugged in', async () =>
      (await state()) === 'working' && (await leased()) === 1 ? true : undefined,
    );

    await page.click('#pause');
    await until('the tab to pause', async () => ((await state()) === 'paused' ? true : undefined));
    assert.equal(await leased(), 0, 'a paused tab holds no lease');
    assert.equal(await text(page, '#pause'), 'Resume');

    await page.click('#pause');
    await until('a unit in training again', async () =>
      (await state()) === 'working' && (await leased()) === 1 ? true : undefined,
    );
    // Closing the tab mid-unit: its unit's saved part is handed in, on closing or on the next visit.
    const saved = await until('a checkpoint of the unit', async () => {
      const shown = await text(page, '#saved');
      return shown === '–' ? undefined : Number(shown.split(' ')[0]!.replaceAll(',', ''));
    });
    const closing = (await text(page, '#unit')).split(' ')[0]!;
    const creditBefore = await volunteerCredit(url);
    await page.close({ runBeforeUnload: false });
    // The lease runs for ten minutes: only the tab going away can give the rest out this soon.
    const rest = await until(
      'the unsaved rest of the closed tab’s unit to be out again',
      () => {
        const base = closing.replace(/(?:-[px]\d+)+$/, '');
        const rows = query(
          db,
          `SELECT id FROM units WHERE state = 'ready' AND id LIKE '${base}-p%' AND id != '${closing}'`,
        );
        return Promise.resolve(rows.length === 1 ? rows[0]!['id'] : undefined);
      },
      20_000,
    );
    t.diagnostic(`closed with ${saved} samples saved; the rest went out as ${String(rest)}`);
    const reopened = await openVolunteer(context, `${url}/volunteer?autostart=1`, problems);
    const handedIn = await until('the closed tab’s part of its unit to be merged', () => {
      const rows = query(db, `SELECT status, samples FROM results WHERE unit_id = '${closing}'`);
      return Promise.resolve(rows.length === 1 ? rows[0]! : undefined);
    });
    assert.equal(handedIn['status'], 'accepted');
    assert.ok(Number(handedIn['samples']) >= saved, `handed in ${handedIn['samples']}, saved ${saved}`);
    await until('the volunteer to be credited for it', async () =>
      (await volunteerCredit(url)) >= creditBefore + saved ? true : undefined,
    );
    assert.deepEqual(problems, []);
    await reopened.close();
  });
});
