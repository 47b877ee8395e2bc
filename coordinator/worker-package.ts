/**
 * The volunteer package this coordinator serves: worker/bin.ts bundled with esbuild into
 * one ES module (npm dependencies left external), a package.json listing exactly the
 * dependencies the bundle imports at the versions installed here, packed by `npm pack`.
 * npm pack fixes every file's date, so the same code gives the same tarball and sha256.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { sha256Hex } from '../shared/content-hash.ts';

export const WORKER_PACKAGE_NAME = 'arbor-worker';

export interface WorkerPackage {
  readonly sha256: string;
  readonly bytes: Uint8Array;
  readonly version: string;
  readonly dependencies: Readonly<Record<string, string>>;
}

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));

/** `@scope/name/sub/path` -> `@scope/name`; `name/sub` -> `name`. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** The version installed beside this coordinator (what the tests ran against). */
function installedVersion(name: string): string {
  const manifest = join(root, 'node_modules', name, 'package.json');
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
}

export async function buildWorkerPackage(): Promise<WorkerPackage> {
  const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    version: string;
    license?: string;
    engines?: Record<string, string>;
  };
  const stage = mkdtempSync(join(tmpdir(), 'arbor-worker-package-'));
  try {
    const result = await build({
      entryPoints: [join(root, 'worker/bin.ts')],
      outfile: join(stage, 'package/arbor-worker.mjs'),
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      banner: { js: '#!/usr/bin/env node' },
      metafile: true,
      logLevel: 'silent',
    });
    const imported = new Set<string>();
    for (const output of Object.values(result.metafile.outputs))
      for (const entry of output.imports)
        if (entry.external && !entry.path.startsWith('node:')) imported.add(packageName(entry.path));
    const dependencies = Object.fromEntries(
      [...imported].sort().map((name) => [name, installedVersion(name)] as const),
    );
    const manifest = {
      name: WORKER_PACKAGE_NAME,
      version: rootManifest.version,
      description: 'Arbor volunteer: trains Fast Feedforward Network subtrees for an Arbor coordinator.',
      type: 'module',
      license: rootManifest.license ?? 'MIT',
      engines: rootManifest.engines ?? { node: '>=20' },
      bin: { [WORKER_PACKAGE_NAME]: 'arbor-worker.mjs' },
      files: ['arbor-worker.mjs'],
      dependencies,
    };
    writeFileSync(join(stage, 'package/package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', stage], {
      cwd: join(stage, 'package'),
      env: { ...process.env, npm_config_loglevel: 'error', npm_config_update_notifier: 'false' },
    });
    const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
    const bytes = readFileSync(join(stage, filename));
    return { sha256: sha256Hex(bytes), bytes, version: manifest.version, dependencies };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
