import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { sha256Hex } from '../../shared/content-hash.ts';

const SHA256 = /^[0-9a-f]{64}$/;

/**
 * Content-addressed files in one directory, named by their SHA-256. Writes are atomic
 * (temp file, fsync, rename), so a crash leaves either the whole blob or none of it, and
 * a blob once written never changes: readers may cache it forever.
 */
export class BlobStore {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  static isName(name: string): boolean {
    return SHA256.test(name);
  }

  path(sha: string): string {
    if (!BlobStore.isName(sha)) throw new RangeError(`not a blob name: ${JSON.stringify(sha).slice(0, 80)}`);
    return join(this.dir, sha);
  }

  has(sha: string): boolean {
    return BlobStore.isName(sha) && existsSync(this.path(sha));
  }

  size(sha: string): number {
    return statSync(this.path(sha)).size;
  }

  /** Stores `bytes` (if not already there) and returns their name. */
  put(bytes: Uint8Array): string {
    const sha = sha256Hex(bytes);
    const target = this.path(sha);
    if (existsSync(target)) return sha;
    const temp = `${target}.${process.pid}.tmp`;
    const fd = openSync(temp, 'w');
    try {
      let written = 0;
      while (written < bytes.byteLength) written += writeSync(fd, bytes, written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, target);
    return sha;
  }

  read(sha: string): Uint8Array {
    return readFileSync(this.path(sha));
  }
}
