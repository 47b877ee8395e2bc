/**
 * Chromium (the Debian package, through playwright-core) running the volunteer's code in a
 * Web Worker on a chosen backend, served from a loopback HTTP server of its own. SwiftShader
 * gives WebGPU and WebGL2 on the CPU here, so the GPU code paths run without a GPU.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import type { LabAnswer, LabTask } from './lab-messages.ts';

/** Headless Chromium with WebGPU and WebGL2 on SwiftShader. */
export const CHROMIUM_GPU_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];
export const CHROMIUM_PATH = process.env['ARBOR_CHROMIUM'] ?? '/usr/bin/chromium';

export interface BrowserLab {
  run<T>(backend: string, task: LabTask, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const PAGE = `<!doctype html><meta charset="utf-8"><title>arbor lab</title><script>
const thread = new Worker('/lab-thread.js');
const waiting = new Map();
thread.onmessage = (event) => { waiting.get(event.data.id)?.(event.data); waiting.delete(event.data.id); };
let next = 0;
window.lab = (request) => new Promise((resolve) => { const id = next++; waiting.set(id, resolve); thread.postMessage({ ...request, id }); });
</script>`;

export async function openBrowserLab(): Promise<BrowserLab> {
  const { chromium } = await import('playwright-core').catch(() => {
    throw new Error('the browser lab needs playwright-core (a dev dependency): run npm ci in the repository');
  });
  const bundle = await build({
    entryPoints: [join(here, 'lab-thread.ts')],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const script = bundle.outputFiles[0]!.contents;
  const wasmDirectory = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0]!;
    if (path === '/') response.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
    else if (path === '/lab-thread.js')
      response.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
    else if (/^\/wasm\/tfjs-backend-wasm[a-z-]*\.wasm$/.test(path))
      response
        .writeHead(200, { 'content-type': 'application/wasm' })
        .end(readFileSync(join(wasmDirectory, path.slice(6))));
    else response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_GPU_FLAGS });
    const page: Page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    return {
      async run<T>(backend: string, task: LabTask, timeoutMs = 300_000): Promise<T> {
        page.setDefaultTimeout(timeoutMs);
        const answer = await page.evaluate(
          (request) => (window as unknown as { lab: (r: unknown) => Promise<LabAnswer> }).lab(request),
          { ...task, backend },
        );
        if (!answer.ok) throw new Error(`${backend}: ${answer.error}`);
        return answer.result as T;
      },
      async close() {
        await browser?.close();
        server.close();
      },
    };
  } catch (error) {
    await browser?.close();
    server.close();
    throw error;
  }
}
