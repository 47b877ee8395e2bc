import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { type Clock, systemClock } from '../../shared/clock.ts';
import { sha256Hex } from '../../shared/content-hash.ts';
import { InputError } from '../../shared/input-error.ts';

const SHA256 = /^[0-9a-f]{64}$/;

/** A blob file whose content no longer hashes to its name; `source` is its path. */
export class BlobDamagedError extends InputError {
  readonly code = 'BLOB_DAMAGED' as const;
}

export interface BlobStats {
  readonly blobs: number;
  readonly bytes: number;
}

/**
 * Content-addressed files in one directory, named by their SHA-256. Writes are atomic
 * (temp file, fsync, rename), so a crash leaves either the whole blob or none of it, and
 * a blob once written never changes: readers may cache it forever. What the disk did to
 * it since is caught on every read, against its name.
 *
 * Blobs nothing needs any more are collected (`collect`): those outside the live set that
 * were neither written nor handed out (`touch`) lately, since a volunteer may still be
 * fetching what its unit named. A blob already here when the store opened counts as used then.
 */
export class BlobStore {
  private readonly lastUsed = new Map<string, number>();
  private readonly openedMs: number;
  private stored: { blobs: number; bytes: number };

  constructor(
    readonly dir: string,
    private readonly clock: Clock = systemClock,
  ) {
    mkdirSync(dir, { recursive: true });
    this.openedMs = clock.now();
    this.stored = { blobs: 0, bytes: 0 };
    for (const name of this.names()) {
      this.stored.blobs++;
      this.stored.bytes += statSync(join(dir, name)).size;
    }
  }

  /** How many blobs, of how many bytes, are stored now. */
  stats(): BlobStats {
    return { ...this.stored };
  }

  /** Marks a blob as handed out now: it is not collected for a while, live or not. */
  touch(sha: string): void {
    if (BlobStore.isName(sha)) this.lastUsed.set(sha, this.clock.now());
  }

  /**
   * Deletes every blob not in `live` and unused since `usedBeforeMs` (a write or a touch
   * counts as a use); returns what went.
   */
  collect(live: ReadonlySet<string>, usedBeforeMs: number): BlobStats {
    let blobs = 0;
    let bytes = 0;
    for (const name of this.names()) {
      if (live.has(name) || (this.lastUsed.get(name) ?? this.openedMs) >= usedBeforeMs) continue;
      const path = join(this.dir, name);
      const size = statSync(path).size;
      unlinkSync(path);
      this.lastUsed.delete(name);
      blobs++;
      bytes += size;
    }
    this.stored = { blobs: this.stored.blobs - blobs, bytes: this.stored.bytes - bytes };
    return { blobs, bytes };
  }

  private names(): string[] {
    return readdirSync(this.dir).filter((name) => BlobStore.isName(name));
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
    this.lastUsed.set(sha, this.clock.now());
    const existed = existsSync(target);
    if (existed && sha256Hex(readFileSync(target)) === sha) return sha;
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
    if (!existed) this.stored = { blobs: this.stored.blobs + 1, bytes: this.stored.bytes + bytes.byteLength };
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
