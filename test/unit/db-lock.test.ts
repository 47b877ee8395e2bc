/**
 * One coordinator per database, told by `<db>.lock`: a pid and that process's start time, so
 * that a coordinator restarted as the same pid (PID 1 of a restarted container) takes over
 * the lock its killed predecessor left.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DatabaseLock, processStart } from '../../coordinator/store/db-lock.ts';

const dir = mkdtempSync(join(tmpdir(), 'arbor-lock-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const db = () => join(dir, `job-${n++}.db`);

void describe('the database lock', () => {
  void it('holds the pid and the start time of its owner; release removes it', () => {
    const path = db();
    const lock = DatabaseLock.acquire(path);
    assert.equal(readFileSync(`${path}.lock`, 'utf8'), `${process.pid} ${processStart(process.pid)}`);
    lock.release();
    assert.equal(existsSync(`${path}.lock`), false);
  });

  void it('takes over a lock with this pid but another start time (a restarted container)', () => {
    const path = db();
    writeFileSync(`${path}.lock`, `${process.pid} 1`);
    DatabaseLock.acquire(path).release();
  });

  void it('refuses a lock this very process holds', () => {
    const path = db();
    const lock = DatabaseLock.acquire(path);
    assert.throws(() => DatabaseLock.acquire(path), /is already open in this process/);
    lock.release();
  });

  void it('refuses a lock a live process holds, naming its pid; takes it over once it is gone', async () => {
    const path = db();
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    const pid = other.pid!;
    writeFileSync(`${path}.lock`, `${pid} ${processStart(pid)}`);
    assert.throws(
      () => DatabaseLock.acquire(path),
      new RegExp(`in use by another coordinator \\(pid ${pid}\\)`),
    );
    other.kill('SIGKILL');
    await once(other, 'exit');
    DatabaseLock.acquire(path).release();
  });
});
