import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseError } from './database-error.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * When `pid` started (clock ticks after boot, /proc/PID/stat field 22), or undefined without
 * /proc. A pid alone is reused: a coordinator restarted in a container is PID 1 again.
 */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2, the command name, may hold spaces and parentheses: count from after it.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** The lock's `PID [START]` names a process still running (START unknown: the pid decides). */
function sameProcess(pid: number, start: string | undefined): boolean {
  if (!alive(pid)) return false;
  const now = processStart(pid);
  return start === undefined || now === undefined || start === now;
}

/**
 * One coordinator per database: `<db>.lock` holds the owner's pid and start time. A lock whose
 * process is gone is taken over; a live one is refused with the pid to stop.
 */
export class DatabaseLock {
  private constructor(private readonly path: string) {}

  static acquire(dbPath: string): DatabaseLock {
    const path = `${dbPath}.lock`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx');
        writeSync(fd, [process.pid, processStart(process.pid)].join(' ').trim());
        closeSync(fd);
        return new DatabaseLock(path);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT')
          throw new DatabaseError(
            dbPath,
            `cannot be created: the folder ${dirname(dbPath)} does not exist (create it, or pass another --db)`,
          );
        if (code !== 'EEXIST')
          throw new DatabaseError(dbPath, `cannot create the lock ${path}: ${(error as Error).message}`);
        const [pidText, start] = readFileSync(path, 'utf8').trim().split(' ');
        const owner = Number(pidText);
        if (Number.isInteger(owner) && owner > 0 && sameProcess(owner, start))
          throw new DatabaseError(
            dbPath,
            owner === process.pid
              ? 'is already open in this process; pass another --db'
              : `is in use by another coordinator (pid ${owner}); stop it, or pass another --db`,
          );
        rmSync(path, { force: true });
      }
    }
    throw new DatabaseError(dbPath, `cannot take the lock ${path}`);
  }

  release(): void {
    rmSync(this.path, { force: true });
  }
}
