/**
 * The worker's blob cache against a real HTTP server on loopback: blobs are verified by
 * size and SHA-256, kept on disk, and written through a temporary file of their own, so
 * workers sharing a cache directory never trip over each other's half-written files.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROUTES } from '../../proto/routes.ts';
import { sha256Hex } from '../../shared/content-hash.ts';
import { BlobCache, BlobError } from '../../worker/blob-cache.ts';

type Ref = { sha256: string; bytes: number };

const blob = new TextEncoder().encode('shard data '.repeat(100));
const sha256 = sha256Hex(blob);
const dir = mkdtempSync(join(tmpdir(), 'arbor-blob-cache-'));
let server: Server;
let base = '';
let served = 0;
/** More blobs the server has, by SHA-256. */
const others = new Map<string, Uint8Array>();

before(async () => {
  server = createServer((request, response) => {
    served++;
    const other = [...others].find(([hash]) => request.url === ROUTES.blob.path(hash));
    if (request.url === ROUTES.blob.path(sha256)) response.end(blob);
    else if (other !== undefined) response.end(other[1]);
    else response.end('not the blob you asked for');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

void describe('BlobCache', () => {
  void it('writes through a temporary file of its own, whatever another writer left behind', async () => {
    const cacheDir = join(dir, 'shared');
    // Another worker's temporary file under the name a fixed scheme would use.
    mkdirSync(join(cacheDir, `${sha256}.tmp`), { recursive: true });
    const bytes = await new BlobCache(base, undefined, cacheDir).get({ sha256, bytes: blob.byteLength });
    assert.deepEqual(bytes, blob);
    assert.deepEqual(readFileSync(join(cacheDir, sha256)), Buffer.from(blob));
    assert.deepEqual(readdirSync(cacheDir).sort(), [sha256, `${sha256}.tmp`]);
  });

  void it('downloads a blob once per cache directory, and refuses one that does not match its hash', async () => {
    const cacheDir = join(dir, 'once');
    const before = served;
    await new BlobCache(base, undefined, cacheDir).get({ sha256, bytes: blob.byteLength });
    await new BlobCache(base, undefined, cacheDir).get({ sha256, bytes: blob.byteLength });
    assert.equal(served - before, 1);
    const other = 'f'.repeat(64);
    await assert.rejects(
      new BlobCache(base, undefined, cacheDir).get({ sha256: other, bytes: 26 }),
      BlobError,
    );
  });

  void it('downloads again, and rewrites, a cached blob that was damaged on disk', async () => {
    const cacheDir = join(dir, 'damaged');
    const ref = { sha256, bytes: blob.byteLength };
    await new BlobCache(base, undefined, cacheDir).get(ref);
    const damaged = readFileSync(join(cacheDir, sha256));
    for (const at of [0, 100, 500, 1000]) damaged[at]! ^= 0xff;
    writeFileSync(join(cacheDir, sha256), damaged);
    const before = served;
    assert.deepEqual(await new BlobCache(base, undefined, cacheDir).get(ref), blob);
    assert.equal(served - before, 1, 'fetched again, not used');
    assert.deepEqual(readFileSync(join(cacheDir, sha256)), Buffer.from(blob));
  });

  void it('keeps its directory within its bound, dropping the blob used longest ago', async () => {
    const cacheDir = join(dir, 'bounded');
    const [a, b, c] = ['a', 'b', 'c'].map((letter) => {
      const bytes = new TextEncoder().encode(letter.repeat(1000));
      others.set(sha256Hex(bytes), bytes);
      return { sha256: sha256Hex(bytes), bytes: bytes.byteLength };
    }) as [Ref, Ref, Ref];
    mkdirSync(cacheDir, { recursive: true });
    writeFileSync(join(cacheDir, 'worker-name'), 'kept-1234\n');
    const cache = (): BlobCache => new BlobCache(base, undefined, cacheDir, 2500);
    const usedSecondsAgo = (ref: Ref, seconds: number): void => {
      const then = new Date(Date.now() - seconds * 1000);
      utimesSync(join(cacheDir, ref.sha256), then, then);
    };
    await cache().get(a);
    usedSecondsAgo(a, 1000);
    await cache().get(b);
    usedSecondsAgo(b, 900);
    await cache().get(a); // from disk: now the most recently used
    await cache().get(c);
    assert.deepEqual(readdirSync(cacheDir).sort(), [a.sha256, c.sha256, 'worker-name'].sort());
  });
});
