/**
 * The compiled copy of the CLI that bin/arbor.js starts: made again when a source changes,
 * made whole when two processes make it at once, its modules still finding the files beside
 * their sources, and the same CLI as the one run from source.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { sourcesKey } from '../../bin/compiled-cli.js';
import { compileCli } from '../../cli/compile-cli.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const cache = join(root, 'node_modules/.cache');
mkdirSync(cache, { recursive: true });
const dir = mkdtempSync(join(cache, 'arbor-compiled-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

void describe('the compiled CLI', { timeout: 120_000 }, () => {
  void it('is keyed by its sources: writing, adding or removing a file changes the key', () => {
    const sources = mkdtempSync(join(tmpdir(), 'arbor-key-'));
    try {
      mkdirSync(join(sources, 'cli/deep'), { recursive: true });
      writeFileSync(join(sources, 'cli/deep/a.ts'), 'export const a = 1;\n');
      const first = sourcesKey(sources, ['cli']);
      assert.equal(sourcesKey(sources, ['cli']), first, 'nothing changed, same key');
      utimesSync(join(sources, 'cli/deep/a.ts'), new Date(), new Date(Date.now() + 5000));
      const touched = sourcesKey(sources, ['cli']);
      assert.notEqual(touched, first);
      writeFileSync(join(sources, 'cli/b.ts'), '');
      const added = sourcesKey(sources, ['cli']);
      assert.notEqual(added, touched);
      rmSync(join(sources, 'cli/b.ts'));
      assert.equal(sourcesKey(sources, ['cli']), touched);
      writeFileSync(join(sources, 'cli/notes.txt'), 'not a source');
      assert.equal(sourcesKey(sources, ['cli']), touched, 'a file no import can name does not count');
      const moved = `${sources}-moved`;
      cpSync(sources, moved, { recursive: true, preserveTimestamps: true });
      try {
        assert.equal(
          sourcesKey(moved, ['cli']),
          touched,
          'the same files elsewhere (a Docker image) have the same key',
        );
      } finally {
        rmSync(moved, { recursive: true, force: true });
      }
    } finally {
      rmSync(sources, { recursive: true, force: true });
    }
  });

  const outDir = join(dir, 'cli-test');
  void it('two processes compiling at once both end with one whole copy, and no staging left', async () => {
    await Promise.all([compileCli(root, outDir), compileCli(root, outDir)]);
    assert.ok(existsSync(join(outDir, 'main.mjs')));
    assert.deepEqual(
      readdirSync(dir).filter((name) => name.includes('.tmp')),
      [],
    );
  });

  void it("each module's import.meta.url names its source file, which exists", () => {
    const chunks = readdirSync(outDir).filter((name) => name.endsWith('.mjs'));
    const named = chunks.flatMap((chunk) =>
      [
        ...readFileSync(join(outDir, chunk), 'utf8').matchAll(/new URL\("([^"]+\.ts)", __arborBundleUrl\)/g),
      ].map((match) => resolve(outDir, match[1]!)),
    );
    assert.ok(
      named.some((path) => path.endsWith('/coordinator/http/dashboard.ts')),
      'the dashboard reads beside itself',
    );
    assert.deepEqual(
      named.filter((path) => !existsSync(path)),
      [],
    );
  });

  void it('finds the sources from where Node runs it, through a symlinked cache folder too', async () => {
    // The real folder sits deeper than the link, as another checkout's node_modules would.
    mkdirSync(join(dir, 'deeper', 'real'), { recursive: true });
    symlinkSync(join(dir, 'deeper', 'real'), join(dir, 'linked'));
    await compileCli(root, join(dir, 'linked', 'cli-linked'));
    const runsFrom = join(dir, 'deeper', 'real', 'cli-linked');
    const named = readdirSync(runsFrom)
      .filter((name) => name.endsWith('.mjs'))
      .flatMap((chunk) =>
        [
          ...readFileSync(join(runsFrom, chunk), 'utf8').matchAll(
            /new URL\("([^"]+\.ts)", __arborBundleUrl\)/g,
          ),
        ].map((match) => resolve(runsFrom, match[1]!)),
      );
    assert.ok(named.length > 0);
    assert.deepEqual(
      named.filter((path) => !existsSync(path) || !path.startsWith(root)),
      [],
    );
  });

  void it('answers as the CLI run from source does', async () => {
    const fromCopy = await run(process.execPath, [join(outDir, 'main.mjs'), 'status', '--help']);
    const fromSource = await run(process.execPath, ['bin/arbor.js', 'status', '--help'], {
      cwd: root,
      env: { ...process.env, ARBOR_FROM_SOURCE: '1' },
    });
    assert.match(fromCopy.stdout, /--url/);
    assert.equal(fromCopy.stdout, fromSource.stdout);
  });
});
