/** The store's multi-statement writes, each one SQLite transaction. */
import type Database from 'better-sqlite3';
import { toUnit } from './sqlite-rows.ts';
import type { prepareStatements } from './sqlite-statements.ts';
import type { AcceptInput, RejectInput } from './store.ts';

export function prepareTransactions(db: Database.Database, s: ReturnType<typeof prepareStatements>) {
  const lease = db.transaction(
    (
      workerId: string,
      now: number,
      leaseMs: number,
      token: string,
      preferred: readonly number[],
      owner: string,
    ) => {
      const next = s.oldestReady.get({ owner, preferred: JSON.stringify(preferred) });
      if (next === undefined) return undefined;
      s.lease.run(workerId, token, now + leaseMs, now, next.id);
      const row = s.getUnit.get(next.id);
      return row === undefined ? undefined : toUnit(row);
    },
  );
  const accept = db.transaction((input: AcceptInput) => {
    if (s.resultExists.get(input.unitId) !== undefined) return undefined;
    if (s.finishUnit.run('accepted', input.unitId).changes !== 1) return undefined;
    const bumped = s.bumpShard.get(input.progress ?? input.samples, input.shard);
    if (bumped === undefined) throw new Error(`acceptResult: unknown shard ${input.shard}`);
    if (input.merged !== undefined) {
      const { weightsBlob, momentumBlob, valLoss, measure, phase } = input.merged;
      s.setShardWeights.run({
        weights: weightsBlob,
        momentum: momentumBlob,
        val: valLoss,
        measure,
        phase,
        id: input.shard,
      });
    }
    s.insertResult.run({
      unit_id: input.unitId,
      worker_id: input.workerId,
      shard: input.shard,
      base_version: input.baseVersion,
      merged_version: bumped.version,
      status: 'accepted',
      rule: null,
      reason: null,
      delta_blob: input.deltaBlob,
      samples: input.samples,
      received_ms: input.now,
    });
    s.creditWorker.run(input.samples, input.workerId);
    if (input.alsoCredit != null) s.creditWorker.run(input.samples, input.alsoCredit);
    return bumped.version;
  });
  const reject = db.transaction((input: RejectInput) => {
    if (s.resultExists.get(input.unitId) !== undefined) return false;
    const unit = s.getUnit.get(input.unitId);
    if (unit === undefined) return false;
    if (s.finishUnit.run('rejected', input.unitId).changes !== 1) return false;
    s.insertResult.run({
      unit_id: input.unitId,
      worker_id: input.workerId,
      shard: unit.shard,
      base_version: unit.base_version,
      merged_version: null,
      status: 'rejected',
      rule: input.rule,
      reason: input.reason,
      delta_blob: null,
      samples: 0,
      received_ms: input.now,
    });
    s.penalizeWorker.run(input.workerId);
    return true;
  });
  return { lease, accept, reject };
}
