/** A volunteer's default name survives restarts: kept in its directory, made once. */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NAME_FILE, stableWorkerName } from '../../worker/stable-name.ts';

const dir = mkdtempSync(join(tmpdir(), 'arbor-name-'));
after(() => rmSync(dir, { recursive: true, force: true }));

void describe("a volunteer's default name", () => {
  void it('is made once from the machine name and kept for every later start', () => {
    const home = join(dir, 'home');
    const first = stableWorkerName(home);
    assert.ok(
      first.startsWith(
        hostname()
          .replace(/[^\w.-]/g, '')
          .slice(0, 40),
      ),
      first,
    );
    assert.match(first, /-[0-9a-f]{4}$/);
    assert.equal(readFileSync(join(home, NAME_FILE), 'utf8').trim(), first);
    assert.equal(stableWorkerName(home), first);
    assert.notEqual(stableWorkerName(join(dir, 'another-home')), first, 'another directory, another name');
  });

  void it('replaces a kept name it cannot use, and still names a volunteer it cannot keep', () => {
    const home = join(dir, 'damaged');
    stableWorkerName(home);
    writeFileSync(join(home, NAME_FILE), 'bad name with spaces and ' + 'x'.repeat(80));
    const replaced = stableWorkerName(home);
    assert.match(replaced, /^[\w.-]+-[0-9a-f]{4}$/);
    const locked = join(dir, 'locked');
    stableWorkerName(locked);
    rmSync(join(locked, NAME_FILE));
    chmodSync(locked, 0o500);
    try {
      assert.match(stableWorkerName(join(locked, 'sub')), /-[0-9a-f]{4}$/);
    } finally {
      chmodSync(locked, 0o700);
    }
  });
});
