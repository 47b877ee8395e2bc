import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, afterEach, describe, it } from 'node:test';
import { MIGRATIONS } from '../../coordinator/store/migrations.ts';
import { SqliteStore } from '../../coordinator/store/sqlite-store.ts';

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

    void it("keeps a unit's lineage as fields; a unit given none is its own origin", () => {
      store.createUnit({
        id: 'o-p250-x2',
        origin: 'o',
        part: 250,
        retry: 2,
        shard: 0,
        baseVersion: 0,
        createdMs: 0,
      });
      store.createUnit({ id: 'plain-x9', shard: 0, baseVersion: 0, createdMs: 0 });
      const kept = store.getUnit('o-p250-x2')!;
      assert.deepEqual([kept.origin, kept.part, kept.retry], ['o', 250, 2]);
      const plain = store.getUnit('plain-x9')!;
      assert.deepEqual(
        [plain.origin, plain.part, plain.retry],
        ['plain-x9', null, 0],
        'nothing read from the id',
      );
    });

    void it("keeps a unit's share of the schedule; the cut is the furthest cutTo, else window end", () => {
      store.createUnit({
        id: 'whole',
        shard: 0,
        baseVersion: 0,
        createdMs: 0,
        window: { from: 0, to: 0.25, epochs: 3 },
      });
      assert.deepEqual(store.cutProgress(), new Map([[0, 0.25]]));
      store.createUnit({
        id: 'shared',
        shard: 0,
        baseVersion: 0,
        createdMs: 1,
        window: { from: 0.25, to: 0.75, epochs: 6 },
        share: 0.125,
        cutTo: 0.3125,
      });
      assert.deepEqual(
        store.cutProgress(),
        new Map([[0, 0.3125]]),
        'a shared unit moves the cut by its share',
      );
      const unit = store.getUnit('shared')!;
      assert.equal(unit.share, 0.125);
      assert.equal(unit.cutTo, 0.3125);
      assert.deepEqual(unit.window, { from: 0.25, to: 0.75, epochs: 6 });
    });

    void it('lists leased units oldest first and supersedes the twins of a merged unit, never itself', () => {
      store.createUnit({ id: 'u', shard: 0, baseVersion: 0, createdMs: 0 });
      store.createUnit({ id: 'u-b1', shard: 0, baseVersion: 0, createdMs: 0, backupOf: 'u' });
      store.createUnit({ id: 'u-b2', shard: 0, baseVersion: 0, createdMs: 0, backupOf: 'u' });
      store.createUnit({ id: 'other', shard: 0, baseVersion: 0, createdMs: 1 });
      store.leaseUnit('w1', 10, LEASE, 't1');
      store.leaseUnit('w2', 20, LEASE, 't2');
      assert.deepEqual(
        store.leasedUnits().map((u) => [u.id, u.leasedMs]),
        [
          ['u', 10],
          ['u-b1', 20],
        ],
      );
      assert.equal(store.getUnit('u-b1')?.backupOf, 'u');
      const superseded = store.supersedeTwins('u-b1');
      assert.deepEqual(superseded.map((u) => [u.id, u.state, u.workerId]).sort(), [
        ['u', 'leased', 'w1'],
        ['u-b2', 'ready', null],
      ]);
      assert.equal(store.getUnit('u')?.state, 'rejected');
      assert.equal(store.getUnit('u')?.leaseToken, null, 'its lease is dead');
      assert.equal(store.getUnit('u-b2')?.state, 'rejected');
      assert.equal(store.getUnit('u-b1')?.state, 'leased', 'the merged one is left to its merge');
      assert.equal(store.getUnit('other')?.state, 'ready', 'other units are not twins');
      assert.deepEqual(store.supersedeTwins('other'), []);
    });

    void it("retires a shard's open units whose windows end by a point, and no others", () => {
      const window = (from: number, to: number) => ({ from, to, epochs: to - from });
      store.upsertShard({ ...store.getShard(0)!, id: 1 });
      assert.equal(store.mergedFront(0), 0, 'nothing merged yet');
      store.createUnit({ id: 'merged', shard: 0, baseVersion: 0, createdMs: -1, window: window(0.6, 0.7) });
      assert.equal(completeUnit('merged', 'w0', 10, 1), 1);
      assert.equal(store.mergedFront(0), 0.6, 'the furthest start of a merged window');
      assert.equal(store.mergedFront(1), 0);
      store.createUnit({ id: 'early', shard: 0, baseVersion: 0, createdMs: 0, window: window(0, 0.25) });
      store.createUnit({ id: 'ready', shard: 0, baseVersion: 0, createdMs: 1, window: window(0.25, 0.5) });
      store.createUnit({ id: 'late', shard: 0, baseVersion: 0, createdMs: 2, window: window(0.5, 0.75) });
      store.createUnit({ id: 'elsewhere', shard: 1, baseVersion: 0, createdMs: 3, window: window(0, 0.25) });
      store.createUnit({ id: 'legacy', shard: 0, baseVersion: 0, createdMs: 4 });
      store.leaseUnit('w1', 10, LEASE, 't1');
      const retired = store.retireUnitsEndingBy(0, 0.5);
      assert.deepEqual(retired.map((u) => [u.id, u.state, u.workerId]).sort(), [
        ['early', 'leased', 'w1'],
        ['ready', 'ready', null],
      ]);
      assert.equal(store.getUnit('early')?.state, 'rejected');
      assert.equal(store.getUnit('early')?.leaseToken, null, 'its lease is dead');
      assert.equal(store.submitResult('early', 't1', 20), false);
      assert.deepEqual(
        ['late', 'elsewhere', 'legacy'].map((id) => store.getUnit(id)?.state),
        ['ready', 'ready', 'ready'],
      );
      assert.deepEqual(store.retireUnitsEndingBy(0, 0.5), [], 'once');
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

    void it('names the blobs still in use: the job, the shards, units not finished, the latest and best checkpoints', () => {
      store.createJob('{}', 0);
      store.setJobPhase('routing', 0, 'tree');
      store.createUnit({ id: 'merged', shard: 0, baseVersion: 0, createdMs: 1 });
      store.leaseUnit('w2', 0, LEASE, 'tm');
      assert.ok(store.submitResult('merged', 'tm', 1));
      store.acceptResult({
        unitId: 'merged',
        workerId: 'w2',
        shard: 0,
        baseVersion: 0,
        deltaBlob: 'merged-delta',
        samples: 5,
        now: 2,
      });
      store.createUnit({ id: 'held', shard: 0, baseVersion: 0, createdMs: 0 });
      store.leaseUnit('w1', 0, LEASE, 'th');
      assert.ok(store.holdResult('held', 'th', 'w1', 'first-result'));
      for (const [hardTestAcc, checkpointBlob] of [
        [0.5, 'old'],
        [0.9, 'best'],
        [0.7, 'latest'],
      ] as const)
        store.addEval({ atMs: 3, accepted: 1, hardTestAcc, valLoss: 1, checkpointBlob });
      const inUse = store.blobsInUse();
      for (const name of ['tree', 'data-sha', 'w-sha', 'first-result', 'best', 'latest'])
        assert.ok(inUse.has(name), `${name} is in use`);
      for (const name of ['merged-delta', 'old']) assert.ok(!inUse.has(name), `${name} is not`);
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
      assert.equal(
        store.rejectResult({ unitId: 'u', workerId: 'w1', rule: 'lease-held', reason: 'late', now: 4 }),
        false,
      );
    });

    void it('reject records the reason and counts against the worker', () => {
      store.createUnit({ id: 'u', shard: 0, baseVersion: 0, createdMs: 0 });
      store.leaseUnit('w2', 0, LEASE, 't');
      assert.ok(store.submitResult('u', 't', 1));
      assert.equal(
        store.rejectResult({
          unitId: 'u',
          workerId: 'w2',
          rule: 'values-finite',
          reason: 'non-finite',
          now: 5,
        }),
        true,
      );
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

    /** Leases, submits and accepts `id` for `workerId`; returns the shard's new version. */
    const completeUnit = (id: string, workerId: string, samples: number, now: number): number | undefined => {
      const unit = store.leaseUnit(workerId, now, LEASE, `tok-${id}`);
      assert.equal(unit?.id, id, 'the unit to complete is the oldest ready one');
      assert.ok(store.submitResult(id, `tok-${id}`, now));
      return store.acceptResult({
        unitId: id,
        workerId,
        shard: unit.shard,
        baseVersion: unit.baseVersion,
        deltaBlob: `delta-${id}`,
        samples,
        now,
      });
    };

    void it('releaseUnit is token-fenced and hands the unit back as ready', () => {
      store.createUnit({ id: 'u', shard: 0, baseVersion: 0, createdMs: 0 });
      store.leaseUnit('w1', 0, LEASE, 'good');
      assert.equal(store.releaseUnit('u', 'bad'), false);
      assert.equal(store.releaseUnit('nope', 'good'), false, 'unknown unit');
      const still = store.getUnit('u');
      assert.equal(still?.state, 'leased');
      assert.equal(still.leaseToken, 'good');
      assert.equal(still.attempts, 0);

      assert.equal(store.releaseUnit('u', 'good'), true);
      const released = store.getUnit('u');
      assert.equal(released?.state, 'ready');
      assert.equal(released.attempts, 1);
      assert.equal(released.leaseToken, null);
      assert.equal(released.workerId, null);
      assert.equal(released.deadlineMs, null);
      assert.equal(store.renewLease('u', 'good', 10, LEASE), false, 'no renew after release');
      assert.equal(store.submitResult('u', 'good', 10), false, 'no submit after release');
      assert.equal(store.releaseUnit('u', 'good'), false, 'a second release changes nothing');
      assert.equal(store.getUnit('u')?.attempts, 1);

      const again = store.leaseUnit('w2', 20, LEASE, 'next');
      assert.equal(again?.id, 'u');
      assert.equal(again.workerId, 'w2');
      assert.equal(store.releaseUnit('u', 'good'), false, 'the old token is dead for the new lease');
      assert.equal(store.getUnit('u')?.state, 'leased');
    });

    void it('a submitted unit cannot be released', () => {
      store.createUnit({ id: 'u', shard: 0, baseVersion: 0, createdMs: 0 });
      store.leaseUnit('w1', 0, LEASE, 't');
      assert.ok(store.submitResult('u', 't', 1));
      assert.equal(store.releaseUnit('u', 't'), false);
      assert.equal(store.getUnit('u')?.state, 'submitted');
    });

    void it("leaseUnit rebinds base_version to the shard's current version", () => {
      store.createUnit({ id: 'first', shard: 0, baseVersion: 0, createdMs: 0 });
      store.createUnit({ id: 'second', shard: 0, baseVersion: 0, createdMs: 1 });
      assert.equal(completeUnit('first', 'w1', 10, 5), 1);
      assert.equal(store.getShard(0)?.version, 1);
      assert.equal(store.getUnit('second')?.baseVersion, 0, 'unchanged until leased');
      const leased = store.leaseUnit('w2', 6, LEASE, 't');
      assert.equal(leased?.id, 'second');
      assert.equal(leased.baseVersion, 1);
      assert.equal(store.getUnit('second')?.baseVersion, 1);
    });

    void it('a unit released and re-leased after a merge gets the newer base version', () => {
      store.createUnit({ id: 'a', shard: 0, baseVersion: 0, createdMs: 0 });
      store.createUnit({ id: 'b', shard: 0, baseVersion: 0, createdMs: 1 });
      assert.equal(store.leaseUnit('w1', 0, LEASE, 'ta')?.baseVersion, 0);
      assert.equal(completeUnit('b', 'w2', 10, 1), 1);
      assert.ok(store.releaseUnit('a', 'ta'));
      assert.equal(store.leaseUnit('w1', 2, LEASE, 'ta2')?.baseVersion, 1);
    });

    void it('acceptResult with merged weights updates the shard in the same call; a replay changes nothing', () => {
      store.createUnit({ id: 'u', shard: 0, baseVersion: 0, createdMs: 0 });
      store.leaseUnit('w1', 0, LEASE, 't');
      assert.ok(store.submitResult('u', 't', 1));
      const input = {
        unitId: 'u',
        workerId: 'w1',
        shard: 0,
        baseVersion: 0,
        deltaBlob: 'd',
        samples: 30,
        now: 2,
        merged: { weightsBlob: 'w-new', momentumBlob: 'm-new', valLoss: 0.25, measure: 0.25, phase: 'soft' },
      };
      assert.equal(store.acceptResult(input), 1);
      const shard = store.getShard(0);
      assert.equal(shard?.version, 1);
      assert.equal(shard.weightsBlob, 'w-new');
      assert.equal(shard.momentumBlob, 'm-new');
      assert.equal(shard.valLoss, 0.25);
      assert.equal(shard.trainedSamples, 30);
      assert.equal(shard.dataBlob, 'data-sha', 'untouched');

      const replay = {
        ...input,
        now: 3,
        merged: { weightsBlob: 'w-replay', momentumBlob: 'm-replay', valLoss: 9, measure: 9, phase: 'soft' },
      };
      assert.equal(store.acceptResult(replay), undefined);
      assert.deepEqual(store.getShard(0), shard);
      assert.equal(store.getWorker('w1')?.credit, 30);
      assert.equal(store.getResult('u')?.receivedMs, 2);
    });

    void it('keeps volunteer tokens by hash; a revoked one stays listed but inactive', () => {
      assert.equal(store.hasActiveTokens(), false);
      store.createToken({ id: 't1', hash: 'h1', name: 'alice', createdMs: 5 });
      assert.equal(store.hasActiveTokens(), true);
      assert.deepEqual(store.tokenByHash('h1'), {
        id: 't1',
        hash: 'h1',
        name: 'alice',
        createdMs: 5,
        revokedMs: null,
      });
      assert.equal(store.tokenByHash('h2'), undefined);
      assert.throws(
        () => store.createToken({ id: 't2', hash: 'h1', name: 'eve', createdMs: 6 }),
        'hashes are unique',
      );
      assert.equal(store.revokeToken('t1', 9), true);
      assert.equal(store.revokeToken('t1', 10), false, 'once');
      assert.equal(store.tokenByHash('h1')?.revokedMs, 9);
      assert.equal(store.hasActiveTokens(), false);
      assert.deepEqual(
        store.listTokens().map((t) => t.id),
        ['t1'],
      );
    });

    void it("keeps the best validation measure of a shard's phase: merges lower it; a new phase starts it afresh", () => {
      store.upsertShard({ ...store.getShard(0)!, valLoss: 1 });
      assert.equal(store.getShard(0)?.bestValLoss, null, 'no phase measured yet');
      const steps = [
        [0.5, 'soft'],
        [0.75, 'soft'],
        [2, 'harden'],
        [1.5, 'harden'],
      ] as const;
      const bests: [number | null | undefined, string | null | undefined][] = [];
      for (const [i, [measure, phase]] of steps.entries()) {
        store.createUnit({ id: `u${i}`, shard: 0, baseVersion: i, createdMs: i });
        store.leaseUnit('w1', 0, LEASE, `t${i}`);
        assert.ok(store.submitResult(`u${i}`, `t${i}`, 1));
        const merged = { weightsBlob: `w${i}`, momentumBlob: `m${i}`, valLoss: measure + 1, measure, phase };
        store.acceptResult({
          unitId: `u${i}`,
          workerId: 'w1',
          shard: 0,
          baseVersion: i,
          deltaBlob: 'd',
          samples: 1,
          now: 2,
          merged,
        });
        const shard = store.getShard(0)!;
        bests.push([shard.bestValLoss, shard.bestPhase]);
      }
      assert.deepEqual(bests, [
        [0.5, 'soft'],
        [0.5, 'soft'],
        [2, 'harden'],
        [1.5, 'harden'],
      ]);
      assert.equal(store.getShard(0)?.valLoss, 2.5, "the served model's loss of the last merge");
    });

    void it('acceptResult without merged leaves the weights, momentum and val loss alone', () => {
      store.upsertShard({ ...store.getShard(0)!, momentumBlob: 'm0', valLoss: 1.5 });
      store.createUnit({ id: 'u', shard: 0, baseVersion: 0, createdMs: 0 });
      assert.equal(completeUnit('u', 'w1', 10, 1), 1);
      const shard = store.getShard(0);
      assert.equal(shard?.version, 1);
      assert.equal(shard.weightsBlob, 'w-sha');
      assert.equal(shard.momentumBlob, 'm0');
      assert.equal(shard.valLoss, 1.5);
    });

    void it('createJob creates the job once; setJobPhase keeps the tree blob unless given one', () => {
      assert.equal(store.getJob(), undefined);
      assert.equal(store.createJob('{"depth":6}', 10), true);
      assert.deepEqual(store.getJob(), {
        config: '{"depth":6}',
        phase: 'pretraining',
        treeBlob: null,
        pausedMs: null,
        createdMs: 10,
        updatedMs: 10,
      });
      assert.equal(store.createJob('{"depth":9}', 20), false);
      assert.equal(store.getJob()?.config, '{"depth":6}');
      assert.equal(store.getJob()?.createdMs, 10);

      store.setJobPhase('routing', 30, 'tree-1');
      assert.deepEqual(store.getJob(), {
        config: '{"depth":6}',
        phase: 'routing',
        treeBlob: 'tree-1',
        pausedMs: null,
        createdMs: 10,
        updatedMs: 30,
      });
      store.setJobPhase('training', 40);
      const job = store.getJob();
      assert.equal(job?.phase, 'training');
      assert.equal(job.treeBlob, 'tree-1', 'COALESCE keeps the old blob');
      assert.equal(job.updatedMs, 40);
      store.setJobPhase('done', 50, 'tree-2');
      assert.equal(store.getJob()?.treeBlob, 'tree-2');
      assert.equal(store.createJob('{}', 60), false, 'still only once');
      assert.equal(store.getJob()?.phase, 'done');
      store.setJobConfig('{"depth":6,"unit_seconds":7}', 70);
      assert.deepEqual(
        [store.getJob()?.config, store.getJob()?.phase, store.getJob()?.treeBlob, store.getJob()?.updatedMs],
        ['{"depth":6,"unit_seconds":7}', 'done', 'tree-2', 70],
      );
    });

    void it('addEval returns increasing ids and listEvals lists them in order', () => {
      assert.deepEqual(store.listEvals(), []);
      const first = { atMs: 5, accepted: 4, hardTestAcc: 0.5, valLoss: 1.25, checkpointBlob: 'c1' };
      const second = { atMs: 9, accepted: 8, hardTestAcc: 0.75, valLoss: 0.5, checkpointBlob: 'c2' };
      const id1 = store.addEval(first);
      const id2 = store.addEval(second);
      assert.ok(id2 > id1);
      assert.deepEqual(store.listEvals(), [
        { id: id1, ...first },
        { id: id2, ...second },
      ]);
    });

    void it('addToCounter accumulates per name and counters() reports them all', () => {
      assert.deepEqual(store.counters(), {});
      store.addToCounter('bytes_in', 100);
      store.addToCounter('bytes_out', 7);
      store.addToCounter('bytes_in', 25);
      store.addToCounter('bytes_out', -2);
      store.addToCounter('zero', 0);
      assert.deepEqual(store.counters(), { bytes_in: 125, bytes_out: 5, zero: 0 });
    });

    void it('eventsAfter pages by id and round-trips the JSON data', () => {
      const payloads: unknown[] = [
        { a: 1, nested: { list: [1, 'two', null, true] } },
        [1, 2, 3],
        'text with "quotes" and ünïcode',
        42.5,
        null,
      ];
      const ids = payloads.map((data, i) => store.appendEvent(`kind-${i}`, data, 100 + i));
      assert.deepEqual(ids, [1, 2, 3, 4, 5]);
      assert.equal(store.appendEvent('undef', undefined, 200), 6);

      const page1 = store.eventsAfter(0, 2);
      assert.deepEqual(page1, [
        { id: 1, atMs: 100, kind: 'kind-0', data: payloads[0] },
        { id: 2, atMs: 101, kind: 'kind-1', data: payloads[1] },
      ]);
      const page2 = store.eventsAfter(page1.at(-1)!.id, 2);
      assert.deepEqual(
        page2.map((e) => e.id),
        [3, 4],
      );
      assert.equal(page2[0]?.data, payloads[2]);
      assert.equal(page2[1]?.data, 42.5);
      const page3 = store.eventsAfter(page2.at(-1)!.id, 10);
      assert.deepEqual(page3, [
        { id: 5, atMs: 104, kind: 'kind-4', data: null },
        { id: 6, atMs: 200, kind: 'undef', data: null },
      ]);
      assert.deepEqual(store.eventsAfter(6, 10), []);
      assert.deepEqual(store.eventsAfter(0, 0), []);
    });

    void it('listWorkers orders by credit, highest first (ties by id)', () => {
      store.upsertWorker({ id: 'w0', name: 'zero', tokenHash: 'h0', backend: 'wasm', lastSeenMs: 3 });
      store.createUnit({ id: 'a', shard: 0, baseVersion: 0, createdMs: 0 });
      store.createUnit({ id: 'b', shard: 0, baseVersion: 0, createdMs: 1 });
      assert.deepEqual(
        store.listWorkers().map((w) => w.id),
        ['w0', 'w1', 'w2'],
      );
      assert.equal(completeUnit('a', 'w2', 50, 1), 1);
      assert.equal(completeUnit('b', 'w1', 20, 2), 2);
      const workers = store.listWorkers();
      assert.deepEqual(
        workers.map((w) => [w.id, w.credit, w.unitsDone]),
        [
          ['w2', 50, 1],
          ['w1', 20, 1],
          ['w0', 0, 0],
        ],
      );
      assert.deepEqual(workers[2], {
        id: 'w0',
        name: 'zero',
        tokenHash: 'h0',
        backend: 'wasm',
        lastSeenMs: 3,
        unitsDone: 0,
        credit: 0,
        rejections: 0,
      });
      assert.deepEqual(
        [50, 20, 0, 21, 51].map((credit) => store.workersAboveCredit(credit)),
        [0, 1, 2, 1, 0],
        'the workers ahead of a credit: its place is one more',
      );
    });

    void it('upsertWorker updates the identity but keeps the earned credit', () => {
      store.createUnit({ id: 'a', shard: 0, baseVersion: 0, createdMs: 0 });
      assert.equal(completeUnit('a', 'w1', 40, 1), 1);
      store.upsertWorker({
        id: 'w1',
        name: 'renamed',
        tokenHash: 'h1b',
        backend: 'tensorflow',
        lastSeenMs: 9,
      });
      const worker = store.getWorker('w1');
      assert.equal(worker?.name, 'renamed');
      assert.equal(worker.backend, 'tensorflow');
      assert.equal(worker.lastSeenMs, 9);
      assert.equal(worker.credit, 40);
      assert.equal(worker.unitsDone, 1);
    });

    void it('listUnits lists every unit oldest first with its current state', () => {
      assert.deepEqual(store.listUnits(), []);
      store.createUnit({ id: 'late', shard: 0, baseVersion: 0, createdMs: 30 });
      store.createUnit({ id: 'early', shard: 0, baseVersion: 0, createdMs: 10 });
      store.createUnit({ id: 'mid-b', shard: 0, baseVersion: 0, createdMs: 20 });
      store.createUnit({ id: 'mid-a', shard: 0, baseVersion: 0, createdMs: 20 });
      store.leaseUnit('w1', 0, LEASE, 't');
      const units = store.listUnits();
      assert.deepEqual(
        units.map((u) => [u.id, u.state]),
        [
          ['early', 'leased'],
          ['mid-a', 'ready'],
          ['mid-b', 'ready'],
          ['late', 'ready'],
        ],
      );
      assert.deepEqual(units[0], store.getUnit('early'));
    });

    void it('listResults lists accepted and rejected results in arrival order', () => {
      assert.deepEqual(store.listResults(), []);
      store.createUnit({ id: 'a', shard: 0, baseVersion: 0, createdMs: 0 });
      store.createUnit({ id: 'b', shard: 0, baseVersion: 0, createdMs: 1 });
      store.createUnit({ id: 'c', shard: 0, baseVersion: 0, createdMs: 2 });
      store.leaseUnit('w1', 0, LEASE, 'ta');
      store.leaseUnit('w2', 0, LEASE, 'tb');
      assert.equal(completeUnit('c', 'w1', 10, 5), 1);
      assert.ok(
        store.rejectResult({
          unitId: 'b',
          workerId: 'w2',
          rule: 'not-too-stale',
          reason: 'too stale',
          now: 3,
        }),
      );
      assert.ok(store.submitResult('a', 'ta', 7));
      assert.equal(
        store.acceptResult({
          unitId: 'a',
          workerId: 'w1',
          shard: 0,
          baseVersion: 0,
          deltaBlob: 'da',
          samples: 10,
          now: 7,
        }),
        2,
      );
      const results = store.listResults();
      assert.deepEqual(
        results.map((r) => [r.unitId, r.status, r.mergedVersion, r.receivedMs]),
        [
          ['b', 'rejected', null, 3],
          ['c', 'accepted', 1, 5],
          ['a', 'accepted', 2, 7],
        ],
      );
      assert.deepEqual(results[0], store.getResult('b'));
      assert.equal(results[0]?.reason, 'too stale');
      assert.equal(results[0]?.deltaBlob, null);
      assert.equal(results[2]?.deltaBlob, 'da');
    });

    void it('prefers, within the oldest round, a shard whose data the worker holds', () => {
      store.upsertShard({ ...store.getShard(0)!, id: 1 });
      for (const shard of [0, 1])
        store.createUnit({ id: `r1-s${shard}`, shard, baseVersion: 0, createdMs: 1 });
      store.createUnit({ id: 'r0-s0', shard: 0, baseVersion: 0, createdMs: 0 });
      assert.equal(store.leaseUnit('w1', 0, LEASE, 't0', [1])?.id, 'r0-s0', 'the oldest round first');
      assert.equal(store.leaseUnit('w1', 0, LEASE, 't1', [1])?.id, 'r1-s1');
      assert.equal(store.leaseUnit('w2', 0, LEASE, 't2', [1])?.id, 'r1-s0', 'else the oldest unit');
    });

    void it('shardActivity reports leases, verdicts and the mean staleness of merged results', () => {
      for (const id of ['u1', 'u2', 'u3']) store.createUnit({ id, shard: 0, baseVersion: 0, createdMs: 0 });
      for (const [id, token] of [
        ['u1', 't1'],
        ['u2', 't2'],
      ] as const) {
        store.leaseUnit('w1', 0, LEASE, token);
        store.submitResult(id, token, 0);
        store.acceptResult({
          unitId: id,
          workerId: 'w1',
          shard: 0,
          baseVersion: 0,
          deltaBlob: 'd',
          samples: 1,
          now: 0,
        });
      }
      store.leaseUnit('w2', 0, LEASE, 't3');
      assert.deepEqual(store.shardActivity(), [
        { shard: 0, leased: 1, accepted: 2, rejected: 0, meanStaleness: 0.5 },
      ]);
    });

    void it('pruneEvents keeps the newest events, and ids keep growing after it', () => {
      for (let i = 0; i < 10; i++) store.appendEvent('e', { i }, i);
      assert.equal(store.pruneEvents(3), 7);
      assert.deepEqual(
        store.eventsAfter(0, 100).map((e) => (e.data as { i: number }).i),
        [7, 8, 9],
      );
      assert.equal(store.appendEvent('e', { i: 10 }, 10), 11);
      assert.equal(store.pruneEvents(100), 0);
    });

    void it('pruneIdleWorkers forgets idle workers without results, never connected or credited ones', () => {
      store.upsertWorker({ id: 'idle', name: 'idle', tokenHash: '', backend: 'cpu', lastSeenMs: 10 });
      store.upsertWorker({ id: 'fresh', name: 'fresh', tokenHash: '', backend: 'cpu', lastSeenMs: 5_000 });
      store.upsertWorker({ id: 'online', name: 'online', tokenHash: '', backend: 'cpu', lastSeenMs: 10 });
      store.upsertWorker({ id: 'holder', name: 'holder', tokenHash: '', backend: 'cpu', lastSeenMs: 10 });
      store.createUnit({ id: 'u1', shard: 0, baseVersion: 0, createdMs: 0 });
      store.createUnit({ id: 'u2', shard: 0, baseVersion: 0, createdMs: 1 });
      store.leaseUnit('w1', 0, LEASE, 't1');
      store.submitResult('u1', 't1', 0);
      store.acceptResult({
        unitId: 'u1',
        workerId: 'w1',
        shard: 0,
        baseVersion: 0,
        deltaBlob: 'd',
        samples: 5,
        now: 0,
      });
      store.leaseUnit('holder', 0, LEASE, 't2');
      assert.equal(store.pruneIdleWorkers(1_000, ['online']), 2);
      assert.deepEqual(
        store
          .listWorkers()
          .map((w) => w.id)
          .sort(),
        ['fresh', 'holder', 'online', 'w1'],
      );
    });

    void it('transaction() commits and returns the value of its callback', () => {
      const value = store.transaction(() => {
        store.createUnit({ id: 'u', shard: 0, baseVersion: 0, createdMs: 0 });
        store.addToCounter('n', 1);
        return 'done';
      });
      assert.equal(value, 'done');
      assert.equal(store.getUnit('u')?.state, 'ready');
      assert.deepEqual(store.counters(), { n: 1 });
    });

    void it('transaction() rolls back everything when the callback throws', () => {
      store.createUnit({ id: 'kept', shard: 0, baseVersion: 0, createdMs: 0 });
      store.addToCounter('n', 1);
      const before = {
        shards: store.listShards(),
        units: store.listUnits(),
        workers: store.listWorkers(),
        results: store.listResults(),
        counters: store.counters(),
      };
      const boom = new Error('boom');
      assert.throws(
        () =>
          store.transaction(() => {
            store.upsertShard({ ...store.getShard(0)!, weightsBlob: 'changed' });
            store.upsertShard({ ...store.getShard(0)!, id: 1 });
            store.createUnit({ id: 'new', shard: 0, baseVersion: 0, createdMs: 5 });
            store.upsertWorker({ id: 'w3', name: 'three', tokenHash: 'h3', backend: 'cpu', lastSeenMs: 0 });
            assert.equal(store.leaseUnit('w1', 0, LEASE, 't')?.id, 'kept');
            assert.ok(store.submitResult('kept', 't', 1));
            assert.equal(
              store.acceptResult({
                unitId: 'kept',
                workerId: 'w1',
                shard: 0,
                baseVersion: 0,
                deltaBlob: 'd',
                samples: 10,
                now: 1,
                merged: { weightsBlob: 'merged', momentumBlob: 'm', valLoss: 1, measure: 1, phase: 'soft' },
              }),
              1,
            );
            store.addToCounter('n', 10);
            store.appendEvent('lost', { x: 1 }, 1);
            store.createJob('{}', 1);
            store.addEval({ atMs: 1, accepted: 1, hardTestAcc: 0, valLoss: 0, checkpointBlob: 'c' });
            throw boom;
          }),
        (error) => error === boom,
      );
      assert.deepEqual(
        {
          shards: store.listShards(),
          units: store.listUnits(),
          workers: store.listWorkers(),
          results: store.listResults(),
          counters: store.counters(),
        },
        before,
      );
      assert.deepEqual(store.eventsAfter(0, 10), []);
      assert.equal(store.getJob(), undefined);
      assert.deepEqual(store.listEvals(), []);
      assert.equal(store.db.inTransaction, false);
      assert.equal(store.leaseUnit('w1', 0, LEASE, 't')?.id, 'kept', 'still usable afterwards');
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

void describe('Store migrations', () => {
  void it('a database at schema version 1 upgrades to the latest version and keeps its rows', () => {
    const path = join(dir, 'schema-v1.db');
    const old = new Database(path);
    try {
      // What a coordinator built before MIGRATIONS[1] existed left behind.
      old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY)');
      old.exec(MIGRATIONS[0]!);
      old.prepare('INSERT INTO schema_migrations (version) VALUES (1)').run();
      old
        .prepare(
          `INSERT INTO shards (id, version, samples, data_blob, weights_blob, budget_samples, trained_samples)
           VALUES (3, 7, 100, 'old-data', 'old-weights', 1000, 400)`,
        )
        .run();
      old
        .prepare(
          `INSERT INTO units (id, shard, base_version, state, worker_id, lease_token, deadline_ms, attempts, created_ms)
           VALUES ('old-unit', 3, 7, 'leased', 'w-old', 'tok', 500, 2, 11)`,
        )
        .run();
      old
        .prepare(
          `INSERT INTO workers (id, name, token_hash, backend, last_seen_ms, units_done, credit, rejections)
           VALUES ('w-old', 'veteran', 'h', 'cpu', 12, 4, 400, 1)`,
        )
        .run();
      old.prepare(`INSERT INTO events (at_ms, kind, data) VALUES (13, 'boot', '{"v":1}')`).run();
    } finally {
      old.close();
    }

    const store = new SqliteStore(path);
    try {
      assert.equal(store.migrationsApplied, MIGRATIONS.length - 1);
      const versions = store.db
        .prepare<[], { version: number }>('SELECT version FROM schema_migrations ORDER BY version')
        .all()
        .map((r) => r.version);
      assert.deepEqual(
        versions,
        MIGRATIONS.map((_, i) => i + 1),
      );
      assert.deepEqual(store.getShard(3), {
        id: 3,
        version: 7,
        samples: 100,
        dataBlob: 'old-data',
        weightsBlob: 'old-weights',
        budgetSamples: 1000,
        trainedSamples: 400,
        momentumBlob: null,
        valBlob: null,
        valLoss: null,
        bestValLoss: null,
        bestPhase: null,
        contextBlob: null,
      });
      assert.deepEqual(store.getUnit('old-unit'), {
        id: 'old-unit',
        shard: 3,
        baseVersion: 7,
        state: 'leased',
        workerId: 'w-old',
        leaseToken: 'tok',
        deadlineMs: 500,
        attempts: 2,
        createdMs: 11,
        baseBlob: null,
        heldBy: null,
        heldBlob: null,
        window: null,
        baseTop: null,
        baseSamples: null,
        share: null,
        cutTo: null,
        backupOf: null,
        rejectedBy: null,
        leasedMs: null,
        // A unit from before lineage was stored is its own origin: nothing is read from its id.
        origin: 'old-unit',
        part: null,
        retry: 0,
      });
      assert.equal(store.getWorker('w-old')?.credit, 400);
      assert.deepEqual(store.eventsAfter(0, 10), [{ id: 1, atMs: 13, kind: 'boot', data: { v: 1 } }]);
      // The tables and columns of the later migrations work.
      assert.equal(store.getJob(), undefined);
      assert.equal(store.createJob('{}', 20), true);
      store.addToCounter('c', 2);
      assert.deepEqual(store.counters(), { c: 2 });
      assert.equal(
        store.addEval({ atMs: 1, accepted: 0, hardTestAcc: 0, valLoss: 0, checkpointBlob: 'c' }),
        1,
      );
      assert.ok(store.submitResult('old-unit', 'tok', 100));
      assert.equal(
        store.acceptResult({
          unitId: 'old-unit',
          workerId: 'w-old',
          shard: 3,
          baseVersion: 7,
          deltaBlob: 'd',
          samples: 100,
          now: 101,
          merged: {
            weightsBlob: 'new-weights',
            momentumBlob: 'm',
            valLoss: 0.5,
            measure: 0.5,
            phase: 'soft',
          },
        }),
        8,
      );
      assert.equal(store.getShard(3)?.momentumBlob, 'm');
      assert.equal(store.appendEvent('upgraded', null, 102), 2);
    } finally {
      store.close();
    }

    const reopened = new SqliteStore(path);
    try {
      assert.equal(reopened.migrationsApplied, 0);
      assert.equal(reopened.getShard(3)?.weightsBlob, 'new-weights');
      assert.equal(reopened.getJob()?.phase, 'pretraining');
    } finally {
      reopened.close();
    }
  });
});
