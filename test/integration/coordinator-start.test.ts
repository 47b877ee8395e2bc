/**
 * Starting a coordinator on a database: one coordinator per file, a stored job is resumed
 * only with its own settings, and a start that fails says why, names the file and leaves
 * nothing behind.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { parseJobConfig } from '../../coordinator/job/config.ts';
import { type CoordinatorOptions, startCoordinator } from '../../coordinator/main.ts';
import type { DataSplit } from '../../shared/data/dataset.ts';
import { query } from '../helpers/job-database.ts';
import {
  SMALL_JOB,
  type SmallCoordinator,
  seedDatabase,
  smallJobData,
  startSmallCoordinator,
} from '../helpers/small-job.ts';

let small: SmallCoordinator;
let data: DataSplit;
const scratch = mkdtempSync(join(tmpdir(), 'arbor-start-'));

before(async () => {
  small = await startSmallCoordinator();
  data = await smallJobData();
});
after(async () => {
  await small?.close();
  rmSync(scratch, { recursive: true, force: true });
});

const options = (dbPath: string, extra: Partial<CoordinatorOptions> = {}): CoordinatorOptions => ({
  config: parseJobConfig(SMALL_JOB),
  dbPath,
  data,
  host: '127.0.0.1',
  port: 0,
  log: pino({ level: 'silent' }),
  ...extra,
});

async function refusal(start: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await start;
  } catch (error) {
    return error as Error & { code?: string };
  }
  assert.fail('the start should have been refused');
}

void describe('starting a coordinator', () => {
  void it('refuses a database another coordinator has open, naming it and its pid', async () => {
    const dbPath = join(small.dir, 'arbor.db');
    const error = await refusal(startCoordinator(options(dbPath)));
    assert.equal(error.code, 'DB_UNAVAILABLE');
    assert.match(error.message, new RegExp(`^${dbPath}: is already open in this process`));
  });

  void it('refuses to resume a stored job with other settings, listing each difference', async () => {
    const dir = mkdtempSync(join(scratch, 'mismatch-'));
    const dbPath = join(dir, 'arbor.db');
    seedDatabase(dbPath, parseJobConfig(SMALL_JOB), data);
    const error = await refusal(
      startCoordinator(options(dbPath, { requested: { depth: 4, leaf: 4, outer: { lr: 0.5 } } })),
    );
    assert.equal(error.code, 'JOB_MISMATCH');
    assert.match(
      error.message,
      /depth 4 \(stored: 3\), outer\.lr 0\.5 \(stored: 1\)\. Leave those settings out/,
    );
    assert.doesNotMatch(error.message, /leaf/, 'a setting equal to the stored one is no difference');
    assert.deepEqual(readdirSync(dir).sort(), ['arbor.db', 'arbor.db.blobs'], 'no -wal, -shm or lock left');

    const resumed = await startCoordinator(options(dbPath, { requested: {} }));
    assert.equal(resumed.config.depth, 3, 'no settings given: the stored job resumes');
    await resumed.close();
  });

  void it('leaves no database behind when a first start fails on a busy port or missing data', async () => {
    const dir = mkdtempSync(join(scratch, 'failed-'));
    const busyPort = Number(new URL(small.coordinator.url).port);
    const busy = await refusal(startCoordinator(options(join(dir, 'busy.db'), { port: busyPort })));
    assert.match(busy.message, /EADDRINUSE/);
    const withoutData: CoordinatorOptions = {
      ...options(join(dir, 'nodata.db')),
      config: parseJobConfig({ ...SMALL_JOB, data: 'fashion-mnist', data_dir: join(dir, 'nowhere') }),
    };
    delete (withoutData as { data?: DataSplit }).data;
    const missing = await refusal(startCoordinator(withoutData));
    assert.equal(missing.code, 'DATA_INVALID');
    assert.deepEqual(readdirSync(dir), [], 'no database, no blobs, no lock');

    // A database that was there before a failed start is left as it was.
    const kept = join(dir, 'kept.db');
    seedDatabase(kept, parseJobConfig(SMALL_JOB), data);
    await refusal(startCoordinator(options(kept, { port: busyPort })));
    assert.equal(query(kept, 'SELECT COUNT(*) AS n FROM job')[0]!['n'], 1);
  });

  void it('lets a restart change how the job is served, not what it learns, and keeps the change', async () => {
    const dir = mkdtempSync(join(scratch, 'operational-'));
    const dbPath = join(dir, 'arbor.db');
    seedDatabase(dbPath, parseJobConfig(SMALL_JOB), data);
    const mixed = await refusal(
      startCoordinator(options(dbPath, { requested: { unit_seconds: 7, depth: 4 } })),
    );
    assert.equal(mixed.code, 'JOB_MISMATCH');
    assert.match(mixed.message, /depth 4 \(stored: 3\)\. Leave/);
    assert.doesNotMatch(mixed.message, /unit_seconds/, 'an operational setting is no mismatch');

    const changed = await startCoordinator(
      options(dbPath, { requested: { unit_seconds: 7, lease_ms: 9_000, standing: { cooldown_after: 5 } } }),
    );
    assert.deepEqual(
      [changed.config.unit_seconds, changed.config.lease_ms, changed.config.standing.cooldown_after],
      [7, 9_000, 5],
    );
    assert.equal(changed.config.depth, 3);
    await changed.close();
    const later = await startCoordinator(options(dbPath, { requested: {} }));
    assert.deepEqual([later.config.unit_seconds, later.config.lease_ms], [7, 9_000], 'kept in the database');
    await later.close();
  });

  void it('takes over the lock of a coordinator that died', async () => {
    const dir = mkdtempSync(join(scratch, 'stale-'));
    const dbPath = join(dir, 'arbor.db');
    seedDatabase(dbPath, parseJobConfig(SMALL_JOB), data);
    writeFileSync(`${dbPath}.lock`, '999999999');
    const c = await startCoordinator(options(dbPath));
    await c.close();
    assert.equal(existsSync(`${dbPath}.lock`), false, 'released on close');
  });

  void it('refuses to resume a job whose blob file was damaged on disk, naming the file', async () => {
    const dir = mkdtempSync(join(scratch, 'damaged-'));
    const dbPath = join(dir, 'arbor.db');
    seedDatabase(dbPath, parseJobConfig(SMALL_JOB), data);
    const first = await startCoordinator(options(dbPath));
    await first.prepared;
    await first.close();
    const [shard] = query(dbPath, 'SELECT weights_blob FROM shards ORDER BY id LIMIT 1');
    const file = join(`${dbPath}.blobs`, String(shard!['weights_blob']));
    const bytes = readFileSync(file);
    for (const at of [40, 400, 1000, 2000]) bytes[at]! ^= 0xff;
    writeFileSync(file, bytes);

    const resumed = await startCoordinator(options(dbPath));
    try {
      const error = await refusal(resumed.prepared);
      assert.equal(error.code, 'BLOB_DAMAGED');
      assert.ok(error.message.startsWith(`${file}: content does not match its name`), error.message);
      await assert.rejects(resumed.done, { code: 'BLOB_DAMAGED' }, 'the command prints it and exits');
    } finally {
      await resumed.close();
    }
  });

  void it('names the file it cannot open', async () => {
    const dbPath = join(scratch, 'no-such-folder', 'arbor.db');
    const error = await refusal(startCoordinator(options(dbPath)));
    assert.equal(error.code, 'DB_UNAVAILABLE');
    assert.ok(error.message.startsWith(dbPath), error.message);
    assert.match(
      error.message,
      /the folder .*no-such-folder does not exist \(create it, or pass another --db\)/,
    );
  });
});
