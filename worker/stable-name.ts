/**
 * A volunteer's default name, the same on every start: this machine's name and a random
 * suffix, kept in a file, so that credit follows the machine across restarts (a name with
 * the process id scattered it) and two machines with one host name stay apart.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';

export const NAME_FILE = 'worker-name';
export const DEFAULT_ARBOR_HOME = process.env['ARBOR_HOME'] || join(homedir(), '.arbor');

const usable = (name: string): boolean => /^[\w.-]{1,64}$/.test(name);

/** The name kept in `dir`, or a new one kept there (used for this run even if it cannot be kept). */
export function stableWorkerName(dir: string): string {
  const file = join(dir, NAME_FILE);
  try {
    const kept = readFileSync(file, 'utf8').trim();
    if (usable(kept)) return kept;
  } catch {
    // none kept yet
  }
  const machine =
    hostname()
      .replace(/[^\w.-]/g, '')
      .slice(0, 40) || 'volunteer';
  const name = `${machine}-${randomBytes(2).toString('hex')}`;
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, `${name}\n`);
  } catch {
    // a read-only home: the name holds for this run
  }
  return name;
}
