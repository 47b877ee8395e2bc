import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
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
 * One coordinator per database: `<db>.lock` holds the owner's pid. A lock whose process is
 * gone is taken over; a live one is refused with the pid to stop.
 */
export class DatabaseLock {
  private constructor(private readonly path: string) {}

  static acquire(dbPath: string): DatabaseLock {
    const path = `${dbPath}.lock`;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx');
        writeSync(fd, String(process.pid));
        closeSync(fd);
        return new DatabaseLock(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST')
          throw new DatabaseError(dbPath, `cannot create the lock ${path}: ${(error as Error).message}`);
        const owner = Number(readFileSync(path, 'utf8').trim());
        if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner))
          throw new DatabaseError(
            dbPath,
            `is in use by another coordinator (pid ${owner}); stop it, or pass another --db`,
          );
        if (owner === process.pid)
          throw new DatabaseError(dbPath, 'is already open in this process; pass another --db');
        rmSync(path, { force: true });
      }
    }
    throw new DatabaseError(dbPath, `cannot take the lock ${path}`);
  }

  release(): void {
    rmSync(this.path, { force: true });
  }
}
