/** FFF checkpoints as files: written atomically, read with a one-line error naming the file. */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FFFWeights } from '../fff/weights.ts';
import { type FFFCheckpoint, decodeFFFCheckpoint, encodeFFF } from './fff-checkpoint.ts';
import { CheckpointError } from './safetensors.ts';

/** Writes atomically: a temporary file next to `path`, flushed, then renamed over it. */
export async function writeFFF(
  path: string,
  weights: FFFWeights,
  extraMetadata?: Record<string, string>,
): Promise<void> {
  const bytes = encodeFFF(weights, extraMetadata);
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
  return decodeFFFCheckpoint(bytes, path);
}

export async function readFFF(path: string): Promise<FFFWeights> {
  return (await readFFFCheckpoint(path)).weights;
}
