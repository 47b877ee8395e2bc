import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, afterEach, describe, it } from 'node:test';
import { MIGRATIONS } from '../coordinator/store/migrations.ts';
import { SqliteStore } from '../coordinator/store/store.ts';

const LEASE = 1_000;

function seed(store: SqliteStore): void {
  store.upsertShard({
    id: 0,
    version: 0,
    samples: 100,
    dataBlob: 'data-sha',
    weightsBlob: 'w-sha',
    budgetSamples: 1000,
    trainedSamples: 0,
  });
  store.upsertWorker({ id: 'w1', name: 'one', tokenHash: 'h1', backend: 'cpu', lastSeenMs: 0 });
  store.upsertWorker({ id: 'w2', name: 'two', tokenHash: 'h2', backend: 'cpu', lastSeenMs: 0 });
}

/** The contract every Store must satisfy; `open` returns a fresh, empty store. */
function storeContract(label: string, open: () => SqliteStore, reopen?: () => SqliteStore): void {
  void describe(`Store contract: ${label}`, () => {
    let store: SqliteStore;
    beforeEach(() => {
      store = open();
      seed(store);
    });
    afterEach(() => {
      if (store.db.open) store.close();
    });

    void it('leases the oldest ready unit, and nothing when none is ready', () => {
      assert.equal(store.leaseUnit('w1', 0, LEASE, 't0'), undefined);
      store.createUnit({ id: 'b', shard: 0, baseVersion: 0, createdMs: 20 });
      store.createUnit({ id: 'a', shard: 0, baseVersion: 0, createdMs: 10 });
      const first = store.leaseUnit('w1', 100, LEASE, 't1');
      assert.equal(first?.id, 'a');
      assert.equal(first.state, 'leased');
      assert.equal(first.leaseToken, 't1');
      assert.equal(first.workerId, 'w1');
      assert.equal(first.deadlineMs, 100 + LEASE);
      assert.equal(store.leaseUnit('w2', 100, LEASE, 't2')?.id, 'b');
      assert.equal(store.leaseUnit('w2', 100, LEASE, 't3'), undefined);
      assert.deepEqual(store.unitsByState(), {
        ready: 0,
        leased: 2,
        submitted: 0,
        accepted: 0,
        rejected: 0,
        expired: 0,
      });
    });

    void it('a wrong token can neither renew nor submit (zero rows = lease lost)', () => {
      store.createUnit({ id: 'u', shard: 0, baseVersion: 0, createdMs: 0 });
      store.leaseUnit('w1', 0, LEASE, 'good');
      assert.equal(store.renewLease('u', 'bad', 10, LEASE), false);
      assert.equal(store.submitResult('u', 'bad', 10), false);
      assert.equal(store.getUnit('u')?.deadlineMs, LEASE);
      assert.equal(store.renewLease('u', 'good', 500, LEASE), true);
      assert.equal(store.getUnit('u')?.deadlineMs, 500 + LEASE);
      assert.equal(store.submitResult('u', 'good', 600), true);
      assert.equal(store.getUnit('u')?.state, 'submitted');
      assert.equal(store.renewLease('u', 'good', 700, LEASE), false, 'no renew once submitted');
    });

    void it('an expired lease is reissued and the old token is dead', () => {
      store.createUnit({ id: 'u', shard: 0, baseVersion: 0, createdMs: 0 });
      store.leaseUnit('w1', 0, LEASE, 'old');
      assert.equal(store.expireLeases(LEASE), 0, 'deadline itself is still valid');
      assert.equal(store.renewLease('u', 'old', LEASE + 1, LEASE), false, 'past deadline cannot renew');
      assert.equal(store.expireLeases(LEASE + 1), 1);
      const unit = store.getUnit('u');
      assert.equal(unit?.state, 'ready');
      assert.equal(unit.attempts, 1);
      assert.equal(unit.leaseToken, null);
      const again = store.leaseUnit('w2', LEASE + 2, LEASE, 'new');
      assert.equal(again?.id, 'u');
      assert.equal(store.renewLease('u', 'old', LEASE + 3, LEASE), false);
      assert.equal(store.submitResult('u', 'old', LEASE + 3), false);
      assert.equal(store.submitResult('u', 'new', LEASE + 3), true);
    });

    void it('accept is exactly-once: a replay returns undefined and the version bumps once', () => {
      store.createUnit({ id: 'u', shard: 0, baseVersion: 0, createdMs: 0 });
      store.leaseUnit('w1', 0, LEASE, 't');
      assert.ok(store.submitResult('u', 't', 1));
      const input = {
        unitId: 'u',
        workerId: 'w1',
        shard: 0,
        baseVersion: 0,
        deltaBlob: 'd',
        samples: 50,
        now: 2,
      };
      assert.equal(store.acceptResult(input), 1);
      assert.equal(store.acceptResult(input), undefined);
      assert.equal(store.acceptResult({ ...input, deltaBlob: 'other', now: 3 }), undefined);
      const shard = store.getShard(0);
      assert.equal(shard?.version, 1);
      assert.equal(shard.trainedSamples, 50);
      assert.equal(store.getUnit('u')?.state, 'accepted');
      const result = store.getResult('u');
      assert.equal(result?.status, 'accepted');
      assert.equal(result.mergedVersion, 1);
      assert.equal(result.deltaBlob, 'd');
      const worker = store.getWorker('w1');
      assert.equal(worker?.unitsDone, 1);
      assert.equal(worker.credit, 50);
      assert.equal(store.rejectResult({ unitId: 'u', workerId: 'w1', reason: 'late', now: 4 }), false);
    });

    void it('reject records the reason and counts against the worker', () => {
      store.createUnit({ id: 'u', shard: 0, baseVersion: 0, createdMs: 0 });
      store.leaseUnit('w2', 0, LEASE, 't');
      assert.ok(store.submitResult('u', 't', 1));
      assert.equal(store.rejectResult({ unitId: 'u', workerId: 'w2', reason: 'non-finite', now: 5 }), true);
      const result = store.getResult('u');
      assert.equal(result?.status, 'rejected');
      assert.equal(result.reason, 'non-finite');
      assert.equal(result.mergedVersion, null);
      assert.equal(store.getUnit('u')?.state, 'rejected');
      assert.equal(store.getWorker('w2')?.rejections, 1);
      assert.equal(store.getShard(0)?.version, 0);
      const input = {
        unitId: 'u',
        workerId: 'w2',
        shard: 0,
        baseVersion: 0,
        deltaBlob: 'd',
        samples: 5,
        now: 6,
      };
      assert.equal(store.acceptResult(input), undefined);
    });

    void it('the state CHECK rejects a bad state written through raw SQL', () => {
      store.createUnit({ id: 'u', shard: 0, baseVersion: 0, createdMs: 0 });
      assert.throws(() => store.db.prepare(`UPDATE units SET state = 'bogus' WHERE id = 'u'`).run(), /CHECK/);
      assert.equal(store.getUnit('u')?.state, 'ready');
    });

    void it('migrations are idempotent and events append', () => {
      const rows = store.db.prepare('SELECT version FROM schema_migrations ORDER BY version').all();
      assert.equal(rows.length, MIGRATIONS.length);
      assert.equal(store.appendEvent('boot', { a: 1 }, 7), 1);
      assert.equal(store.appendEvent('tick', null, 8), 2);
      if (reopen === undefined) return;
      store.createUnit({ id: 'kept', shard: 0, baseVersion: 0, createdMs: 0 });
      store.close();
      const again = reopen();
      try {
        assert.equal(again.migrationsApplied, 0);
        assert.equal(
          again.db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM schema_migrations').get()?.n,
          MIGRATIONS.length,
        );
        assert.equal(again.getUnit('kept')?.state, 'ready');
        assert.equal(again.getShard(0)?.dataBlob, 'data-sha');
        assert.equal(again.appendEvent('boot', {}, 9), 3);
      } finally {
        again.close();
      }
    });
  });
}

storeContract('sqlite :memory:', () => new SqliteStore(':memory:'));

const dir = mkdtempSync(join(tmpdir(), 'arbor-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
let current = '';
storeContract(
  'sqlite on disk (WAL)',
  () => {
    current = join(dir, `store-${n++}.db`);
    const s = new SqliteStore(current);
    assert.equal(s.db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(s.migrationsApplied, MIGRATIONS.length);
    return s;
  },
  () => new SqliteStore(current),
);
