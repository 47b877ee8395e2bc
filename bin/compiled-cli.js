// The compiled copy of the CLI that bin/arbor.js starts: found by a key of the sources, and
// made (by cli/compile-cli.ts, through tsx) when no copy matches them.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SOURCE_FOLDERS = ['cli', 'coordinator', 'packaging', 'shared', 'worker', 'proto', 'bench'];

/**
 * Changes whenever a source file under `root` is added, removed or written; not when the
 * checkout moves (a Docker image compiles it in one folder and runs it in another).
 */
export function sourcesKey(root = ROOT, folders = SOURCE_FOLDERS) {
  const hash = createHash('sha1');
  const visit = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (/\.(ts|mts|js|mjs|json)$/.test(entry.name)) {
        const { mtimeMs, size } = statSync(path);
        hash.update(`${relative(root, path)}\0${mtimeMs}\0${size}\n`);
      }
    }
  };
  for (const folder of folders) visit(join(root, folder));
  return hash.digest('hex').slice(0, 16);
}

/** The compiled entry point for the sources as they are now, compiled first if need be. */
export async function compiledCliEntry(root = ROOT) {
  const outDir = join(root, 'node_modules/.cache/arbor', `cli-${sourcesKey(root)}`);
  const entry = join(outDir, 'main.mjs');
  if (!existsSync(entry)) {
    const { register } = await import('tsx/esm/api');
    const unregister = register();
    try {
      const { compileCli } = await import('../cli/compile-cli.ts');
      await compileCli(root, outDir);
    } finally {
      await unregister();
    }
  }
  const now = new Date();
  utimesSync(outDir, now, now);
  return entry;
}
