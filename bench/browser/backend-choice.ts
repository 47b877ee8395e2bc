/**
 * How long a new browser volunteer waits before training, and on what: /volunteer opened in
 * headless Chromium (WebGPU and WebGL2 on SwiftShader, a GPU emulated on this CPU) against a
 * coordinator process on the default job. The tab left to choose (it measures, and skips
 * emulated GPUs) against the tab told `?backend=webgpu` (what it chose before: the first
 * backend that started). The first tab pays for loading the page's scripts; the others are
 * what a returning volunteer sees.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { CHROMIUM_GPU_FLAGS, CHROMIUM_PATH } from './browser-lab.ts';
import { defaultJobCoordinator } from '../helpers/default-coordinator.ts';

export interface TabStart {
  /** From opening the page to its backend being shown. */
  readonly chosen_ms: number;
  readonly backend: string;
  readonly samples_per_s: number;
}

export interface BackendChoiceResult {
  readonly measured_tabs: readonly TabStart[];
  readonly webgpu_tab: TabStart;
  /** Of the last measured tab against the webgpu tab. */
  readonly speed_ratio: number;
  readonly time_ratio: number;
}

async function openTab(browser: Browser, url: string): Promise<TabStart> {
  const page = await browser.newPage();
  const opened = performance.now();
  try {
    await page.goto(url);
    for (;;) {
      const backend = await page.locator('#backend').innerText();
      if (backend !== '–') {
        const chosen = performance.now() - opened;
        const speed = (await page.locator('#speed').innerText()).replace(/[^\d]/g, '');
        return { chosen_ms: Math.round(chosen), backend, samples_per_s: Number(speed) };
      }
      const state = await page.locator('body').getAttribute('data-state');
      if (state === 'failed') throw new Error(await page.locator('#log').innerText());
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    await page.close();
  }
}

export async function benchBackendChoice(tabs: number): Promise<BackendChoiceResult> {
  const dir = mkdtempSync(join(tmpdir(), 'arbor-bench-choice-'));
  const { child: coordinator, url } = await defaultJobCoordinator(dir, ['--enrolment', 'open']);
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_GPU_FLAGS });
  try {
    // The coordinator bundles the page's scripts on the first request: not the tab's time.
    await fetch(`${url}/volunteer/thread.js`);
    const measured: TabStart[] = [];
    for (let i = 0; i < tabs; i++) measured.push(await openTab(browser, `${url}/volunteer?autostart=1`));
    const webgpu = await openTab(browser, `${url}/volunteer?autostart=1&backend=webgpu`);
    const last = measured.at(-1)!;
    return {
      measured_tabs: measured,
      webgpu_tab: webgpu,
      speed_ratio: Number((last.samples_per_s / webgpu.samples_per_s).toFixed(2)),
      time_ratio: Number((last.chosen_ms / webgpu.chosen_ms).toFixed(3)),
    };
  } finally {
    await browser.close();
    coordinator.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
