/**
 * The checksum a checkpoint file carries: metadata `data_sha256`, the lowercase hex SHA-256
 * of the file's data section (every tensor's bytes as stored, in file order). Any
 * safetensors reader sees one more metadata string, and can check it with
 * `sha256(raw[8 + header_length:])`. Node only (node:crypto): the browser volunteer never
 * reads or writes checkpoint files.
 */
import { sha256Hex } from '../content-hash.ts';
import { CHECKSUM_KEY } from './fff-checkpoint.ts';
import { CheckpointError, dataSection, withMetadata } from './safetensors.ts';

/** The encoded file with the checksum of its data section added to its metadata. */
export function withChecksum(bytes: Uint8Array): Uint8Array {
  return withMetadata(bytes, { [CHECKSUM_KEY]: sha256Hex(dataSection(bytes)) });
}

/**
 * Throws a CheckpointError naming `source` when the data section does not hash to the
 * recorded checksum. `metadata` is the file's, already decoded from `bytes`.
 */
export function verifyChecksum(bytes: Uint8Array, metadata: Record<string, string>, source: string): void {
  const expected = metadata[CHECKSUM_KEY];
  // Files written before checkpoints carried a checksum have none: they load unchecked, as before.
  if (expected === undefined) return;
  const actual = sha256Hex(dataSection(bytes, source));
  if (actual !== expected)
    throw new CheckpointError(
      source,
      `checksum mismatch: the file is damaged (expected ${expected.slice(0, 64)}, got ${actual})`,
    );
}
