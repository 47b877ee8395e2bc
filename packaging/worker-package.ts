/**
 * The volunteer worker this coordinator serves, self-contained: entries/arbor-worker.ts bundled by
 * esbuild with every dependency (tfjs, its wasm backend, ws, pino, commander) into one ES
 * module, beside the wasm backend's three binaries. Only the optional accelerators stay
 * outside (tfjs-node, Dawn's `webgpu`): used when the volunteer has them, never required.
 * The same files are offered loose (for `node` alone, see worker-join-script.ts) and as an
 * npm tarball with no dependencies; npm pack fixes every file's date, so the same code gives
 * the same tarball and sha256.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { sha256Hex } from '../shared/content-hash.ts';
import { workerJoinScript } from './worker-join-script.ts';

export const WORKER_PACKAGE_NAME = 'arbor-worker';
export const WORKER_ENTRY = 'arbor-worker.mjs';

/** Loaded only if the volunteer's machine has them (shared/backend.ts, shared/node-webgpu.ts). */
const OPTIONAL_ACCELERATORS = ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'webgpu'];
const WASM_FILES = [
  'tfjs-backend-wasm.wasm',
  'tfjs-backend-wasm-simd.wasm',
  'tfjs-backend-wasm-threaded-simd.wasm',
];

/**
 * CommonJS inside an ES module: the bundled packages call require() for Node built-ins, and
 * the wasm backend looks for its binaries in __dirname, which is where they are served beside it.
 */
const COMMONJS_SHIM = [
  '#!/usr/bin/env node',
  "import { createRequire as __arborRequire } from 'node:module';",
  "import { fileURLToPath as __arborPath } from 'node:url';",
  'const require = __arborRequire(import.meta.url);',
  'const __filename = __arborPath(import.meta.url);',
  "const __dirname = __arborPath(new URL('.', import.meta.url));",
].join('\n');

export interface WorkerFile {
  readonly name: string;
  readonly sha256: string;
  readonly bytes: Uint8Array;
}

export interface WorkerPackage {
  /** Of the tarball. */
  readonly sha256: string;
  /** The npm tarball: the same files and a package.json without dependencies. */
  readonly bytes: Uint8Array;
  readonly version: string;
  /** The bundle (WORKER_ENTRY) first, then the wasm binaries it loads from beside itself. */
  readonly files: readonly WorkerFile[];
  /** What the join command runs: fetches `files` and starts the worker. */
  readonly joinScript: string;
}

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);

const workerFile = (name: string, bytes: Uint8Array): WorkerFile => ({
  name,
  sha256: sha256Hex(bytes),
  bytes,
});

async function bundleWorker(): Promise<WorkerFile> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL('./entries/arbor-worker.ts', import.meta.url))],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    minify: true,
    write: false,
    outfile: WORKER_ENTRY,
    external: OPTIONAL_ACCELERATORS,
    banner: { js: COMMONJS_SHIM },
    define: { 'process.env.NODE_ENV': '"production"', "process.env['ARBOR_BUNDLE']": '"1"' },
    logLevel: 'silent',
  });
  const [output] = result.outputFiles;
  if (output === undefined) throw new Error('esbuild wrote no worker bundle');
  return workerFile(WORKER_ENTRY, output.contents);
}

function wasmBinaries(): WorkerFile[] {
  const directory = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
  return WASM_FILES.map((name) => workerFile(name, readFileSync(join(directory, name))));
}

async function packTarball(files: readonly WorkerFile[], version: string): Promise<Uint8Array> {
  const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    license?: string;
    engines?: Record<string, string>;
  };
  const stage = mkdtempSync(join(tmpdir(), 'arbor-worker-package-'));
  try {
    mkdirSync(join(stage, 'package'));
    for (const file of files) writeFileSync(join(stage, 'package', file.name), file.bytes);
    const manifest = {
      name: WORKER_PACKAGE_NAME,
      version,
      description: 'Arbor volunteer: trains Fast Feedforward Network subtrees for an Arbor coordinator.',
      type: 'module',
      license: rootManifest.license ?? 'MIT',
      engines: rootManifest.engines ?? { node: '>=20' },
      bin: { [WORKER_PACKAGE_NAME]: WORKER_ENTRY },
      files: files.map((file) => file.name),
    };
    writeFileSync(join(stage, 'package/package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', stage], {
      cwd: join(stage, 'package'),
      env: { ...process.env, npm_config_loglevel: 'error', npm_config_update_notifier: 'false' },
    });
    const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
    return readFileSync(join(stage, filename));
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

export async function buildWorkerPackage(): Promise<WorkerPackage> {
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  const files = [await bundleWorker(), ...wasmBinaries()];
  const bytes = await packTarball(files, version);
  const joinScript = workerJoinScript(version, files, WORKER_ENTRY);
  return { sha256: sha256Hex(bytes), bytes, version, files, joinScript };
}
