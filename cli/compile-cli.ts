/**
 * Compiles the CLI into plain JavaScript beside its sources' cache key, so that `bin/arbor.js`
 * starts without tsx's loader (about 0.2 s of every command) once the sources are compiled.
 * Nobody runs this: the launcher calls it when no compiled copy matches the sources.
 *
 * Packages (but one) stay external and every dynamic import becomes its own chunk, so a command loads
 * what it loaded from source and no more. Each module's `import.meta.url` still names its
 * source file, so files read beside a module (the dashboard's page, the worker package's
 * sources) are found where they are in the repository.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { build, type Plugin } from 'esbuild';

const BUNDLE_URL = '__arborBundleUrl';
const SOURCE_URL = '__arborSourceUrl';
/** A compiled copy nobody has started for this long is removed (a long-running process may still load its chunks). */
const UNUSED_FOR_MS = 7 * 24 * 3600 * 1000;

/**
 * Leaves packages to node_modules, except TypeBox: loading its 247 modules one by one was
 * most of `arbor status`'s start (TypeBox keeps no state a second copy could miss: its kinds
 * are global symbols, and Arbor registers no formats).
 */
const externalPackages: Plugin = {
  name: 'arbor-external-packages',
  setup(compiler) {
    compiler.onResolve({ filter: /^[^./]/ }, (args) =>
      args.path.startsWith('@sinclair/typebox') ? undefined : { path: args.path, external: true },
    );
  },
};

/** Gives every module an `import.meta.url` that points at its source file, relative to where the chunk lands. */
function sourceUrls(outDir: string): Plugin {
  return {
    name: 'arbor-source-urls',
    setup(compiler) {
      compiler.onLoad({ filter: /\.ts$/ }, async (args) => {
        const fromChunk = relative(outDir, args.path);
        const text = await readFile(args.path, 'utf8');
        const header = `const ${SOURCE_URL} = new URL(${JSON.stringify(fromChunk)}, ${BUNDLE_URL}).href;\n`;
        return { contents: header + text, loader: 'ts' };
      });
    },
  };
}

/**
 * Builds `root/cli/main.ts` into `outDir/main.mjs` (through a private folder, renamed into
 * place, so two processes compiling at once both end with one whole copy) and removes old
 * copies nobody has started for a week.
 */
export async function compileCli(root: string, outDir: string): Promise<void> {
  const staging = `${outDir}.${process.pid}-${randomUUID().slice(0, 8)}.tmp`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  // Node runs a chunk from its real path (through a symlinked node_modules): count from there.
  const runsFrom = join(realpathSync(dirname(outDir)), basename(outDir));
  try {
    await build({
      absWorkingDir: root,
      entryPoints: { main: join(root, 'cli/main.ts') },
      bundle: true,
      splitting: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outdir: staging,
      outExtension: { '.js': '.mjs' },
      sourcemap: 'linked',
      sourcesContent: false,
      define: { 'import.meta.url': SOURCE_URL },
      banner: { js: `const ${BUNDLE_URL} = import.meta.url;` },
      plugins: [externalPackages, sourceUrls(runsFrom)],
      logLevel: 'silent',
    });
    moveIntoPlace(staging, outDir);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  removeUnused(dirname(outDir), outDir);
}

/** Another process may have put its own copy there first: then that one stays. */
function moveIntoPlace(staging: string, outDir: string): void {
  try {
    renameSync(staging, outDir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
  }
}

function removeUnused(cacheDir: string, keep: string): void {
  const now = Date.now();
  for (const name of readdirSync(cacheDir)) {
    const path = join(cacheDir, name);
    if (path === keep || !name.startsWith('cli-')) continue;
    if (now - statSync(path).mtimeMs > UNUSED_FOR_MS) rmSync(path, { recursive: true, force: true });
  }
}
