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
import { InputError } from '../../shared/input-error.ts';

const SHA256 = /^[0-9a-f]{64}$/;

/** A blob file whose content no longer hashes to its name; `source` is its path. */
export class BlobDamagedError extends InputError {
  readonly code = 'BLOB_DAMAGED' as const;
}

/**
 * Content-addressed files in one directory, named by their SHA-256. Writes are atomic
 * (temp file, fsync, rename), so a crash leaves either the whole blob or none of it, and
 * a blob once written never changes: readers may cache it forever. What the disk did to
 * it since is caught on every read, against its name.
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

  /** Stores `bytes` (unless an intact copy is there: a damaged one is replaced) and returns their name. */
  put(bytes: Uint8Array): string {
    const sha = sha256Hex(bytes);
    const target = this.path(sha);
    if (existsSync(target) && sha256Hex(readFileSync(target)) === sha) return sha;
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

  /** The blob's bytes; throws BlobDamagedError, naming the file, when they do not hash to `sha`. */
  read(sha: string): Uint8Array {
    const path = this.path(sha);
    const bytes = readFileSync(path);
    const actual = sha256Hex(bytes);
    if (actual !== sha)
      throw new BlobDamagedError(
        path,
        `content does not match its name: the blob file is damaged (its SHA-256 is ${actual})`,
      );
    return bytes;
  }
}
