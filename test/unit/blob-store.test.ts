/**
 * The coordinator's blob files are named by their SHA-256 and checked against the name
 * whenever they are read back: a damaged file is refused with its path, and storing the
 * same content again replaces it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BlobDamagedError, BlobStore } from '../../coordinator/store/blob-store.ts';
import { ManualClock } from '../../shared/clock.ts';

const dir = mkdtempSync(join(tmpdir(), 'arbor-blob-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const content = new TextEncoder().encode('subtree weights '.repeat(64));

function damage(path: string): void {
  const bytes = readFileSync(path);
  for (const at of [3, 200, 511, 777]) bytes[at]! ^= 0xff;
  writeFileSync(path, bytes);
}

void describe('BlobStore', () => {
  void it('reads back what it stored', () => {
    const blobs = new BlobStore(join(dir, 'intact'));
    const sha = blobs.put(content);
    assert.deepEqual(new Uint8Array(blobs.read(sha)), content);
  });

  void it('refuses a blob whose file was damaged on disk, naming the file', () => {
    const blobs = new BlobStore(join(dir, 'damaged'));
    const sha = blobs.put(content);
    damage(blobs.path(sha));
    assert.throws(
      () => blobs.read(sha),
      (error: unknown) => {
        assert.ok(error instanceof BlobDamagedError, `expected BlobDamagedError, got ${String(error)}`);
        assert.equal(error.code, 'BLOB_DAMAGED');
        assert.equal(error.source, blobs.path(sha));
        assert.ok(error.message.startsWith(`${blobs.path(sha)}: `), error.message);
        assert.match(
          error.problem,
          /^content does not match its name: the blob file is damaged \(its SHA-256 is [0-9a-f]{64}\)$/,
        );
        return true;
      },
    );
  });

  void it('replaces a damaged copy when the same content is stored again', () => {
    const blobs = new BlobStore(join(dir, 'repaired'));
    const sha = blobs.put(content);
    damage(blobs.path(sha));
    assert.equal(blobs.put(content), sha);
    assert.deepEqual(new Uint8Array(blobs.read(sha)), content);
  });
});

void describe('BlobStore collection', () => {
  const bytesOf = (text: string) => new TextEncoder().encode(text);

  void it('deletes what is neither live nor used since the cut-off, and counts what it holds', () => {
    const clock = new ManualClock(1_000);
    const blobs = new BlobStore(join(dir, 'collect'), clock);
    const live = blobs.put(bytesOf('current weights'));
    const old = blobs.put(bytesOf('superseded weights'));
    const handedOut = blobs.put(bytesOf('weights a volunteer was just given'));
    assert.deepEqual(blobs.stats(), { blobs: 3, bytes: 15 + 18 + 34 });
    clock.advance(10_000);
    blobs.touch(handedOut);
    clock.advance(1_000);
    const freed = blobs.collect(new Set([live]), clock.now() - 5_000);
    assert.deepEqual(freed, { blobs: 1, bytes: 18 });
    assert.equal(blobs.has(old), false);
    assert.ok(blobs.has(live) && blobs.has(handedOut));
    assert.deepEqual(blobs.stats(), { blobs: 2, bytes: 15 + 34 });
    // Later, unused and not live: it goes too; the same content stored again comes back.
    clock.advance(10_000);
    assert.deepEqual(blobs.collect(new Set([live]), clock.now() - 5_000), { blobs: 1, bytes: 34 });
    assert.equal(blobs.put(bytesOf('superseded weights')), old);
    assert.deepEqual(blobs.stats(), { blobs: 2, bytes: 15 + 18 });
  });

  void it('counts a blob found on disk at start as used then, so a restart deletes nothing at once', () => {
    const path = join(dir, 'reopened');
    const first = new BlobStore(path, new ManualClock(0));
    const orphan = first.put(bytesOf('left by the last run'));
    const clock = new ManualClock(1_000_000);
    const reopened = new BlobStore(path, clock);
    assert.deepEqual(reopened.stats(), { blobs: 1, bytes: 20 });
    assert.deepEqual(reopened.collect(new Set(), clock.now() - 60_000), { blobs: 0, bytes: 0 });
    clock.advance(120_000);
    assert.deepEqual(reopened.collect(new Set(), clock.now() - 60_000), { blobs: 1, bytes: 20 });
    assert.equal(reopened.has(orphan), false);
  });
});
