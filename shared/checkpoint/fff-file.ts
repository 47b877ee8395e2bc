/**
 * FFF checkpoints as files: written atomically with the checksum of their tensors, read
 * with a one-line error naming the file, damaged ones refused.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FFFWeights } from '../fff/weights.ts';
import { verifyChecksum, withChecksum } from './checkpoint-checksum.ts';
import { type FFFCheckpoint, decodeFFFCheckpoint, encodeFFF } from './fff-checkpoint.ts';
import { CheckpointError } from './safetensors.ts';

export async function writeFFF(
  path: string,
  weights: FFFWeights,
  extraMetadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomically(path, withChecksum(encodeFFF(weights, extraMetadata)));
}

/** A checkpoint from its bytes, refused when its tensors do not match its checksum. */
export function decodeCheckpointFile(bytes: Uint8Array, source: string): FFFCheckpoint {
  const checkpoint = decodeFFFCheckpoint(bytes, source);
  verifyChecksum(bytes, checkpoint.metadata, source);
  return checkpoint;
}

/** A temporary file next to `path`, flushed, then renamed over it. */
export async function writeFileAtomically(path: string, bytes: Uint8Array): Promise<void> {
  const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await mkdir(dirname(path), { recursive: true });
  try {
    const handle = await open(temp, 'wx');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}

export async function readFFFCheckpoint(path: string): Promise<FFFCheckpoint> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CheckpointError(
      path,
      code === 'ENOENT' ? 'file not found' : `cannot read (${code ?? String(error)})`,
    );
  }
  return decodeCheckpointFile(bytes, path);
}

export async function readFFF(path: string): Promise<FFFWeights> {
  return (await readFFFCheckpoint(path)).weights;
}
