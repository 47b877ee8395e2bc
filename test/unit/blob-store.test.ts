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
