/** Row shapes of the SQLite tables and their mapping to the Store's types. */
import type { EvalRow, ResultRow, Shard, TokenRow, Unit, UnitState, Worker } from './store.ts';

export interface TokenDbRow {
  id: string;
  hash: string;
  name: string;
  created_ms: number;
  revoked_ms: number | null;
}

export const toToken = (r: TokenDbRow): TokenRow => ({
  id: r.id,
  hash: r.hash,
  name: r.name,
  createdMs: r.created_ms,
  revokedMs: r.revoked_ms,
});

export interface ShardRow {
  id: number;
  version: number;
  samples: number;
  data_blob: string;
  weights_blob: string;
  budget_samples: number;
  trained_samples: number;
  momentum_blob: string | null;
  val_blob: string | null;
  val_loss: number | null;
  best_val_loss: number | null;
  best_phase: string | null;
  context_blob: string | null;
}
export interface UnitRow {
  id: string;
  shard: number;
  base_version: number;
  state: UnitState;
  worker_id: string | null;
  lease_token: string | null;
  deadline_ms: number | null;
  attempts: number;
  created_ms: number;
  base_blob: string | null;
  held_by: string | null;
  held_blob: string | null;
  window_from: number | null;
  window_to: number | null;
  epochs: number | null;
  base_top: number | null;
  base_samples: number | null;
  share: number | null;
  cut_to: number | null;
  backup_of: string | null;
  rejected_by: string | null;
  leased_ms: number | null;
  /** Null for units created before lineage was stored, or given none: their own origin. */
  origin: string | null;
  part: number | null;
  retry: number;
}
export interface WorkerRow {
  id: string;
  name: string;
  token_hash: string;
  backend: string;
  last_seen_ms: number;
  units_done: number;
  credit: number;
  rejections: number;
}
export interface ResultDbRow {
  unit_id: string;
  worker_id: string;
  shard: number;
  base_version: number;
  merged_version: number | null;
  status: 'accepted' | 'rejected';
  rule: string | null;
  reason: string | null;
  delta_blob: string | null;
  samples: number;
  received_ms: number;
}
export interface EvalDbRow {
  id: number;
  at_ms: number;
  accepted: number;
  hard_test_acc: number;
  val_loss: number;
  checkpoint_blob: string;
}

export const toShard = (r: ShardRow): Shard => ({
  id: r.id,
  version: r.version,
  samples: r.samples,
  dataBlob: r.data_blob,
  weightsBlob: r.weights_blob,
  budgetSamples: r.budget_samples,
  trainedSamples: r.trained_samples,
  momentumBlob: r.momentum_blob,
  valBlob: r.val_blob,
  valLoss: r.val_loss,
  bestValLoss: r.best_val_loss,
  bestPhase: r.best_phase,
  contextBlob: r.context_blob,
});
export const toUnit = (r: UnitRow): Unit => ({
  id: r.id,
  shard: r.shard,
  baseVersion: r.base_version,
  state: r.state,
  workerId: r.worker_id,
  leaseToken: r.lease_token,
  deadlineMs: r.deadline_ms,
  attempts: r.attempts,
  createdMs: r.created_ms,
  baseBlob: r.base_blob,
  heldBy: r.held_by,
  heldBlob: r.held_blob,
  window:
    r.window_from === null || r.window_to === null || r.epochs === null
      ? null
      : { from: r.window_from, to: r.window_to, epochs: r.epochs },
  baseTop: r.base_top,
  baseSamples: r.base_samples,
  share: r.share,
  cutTo: r.cut_to,
  backupOf: r.backup_of,
  rejectedBy: r.rejected_by === null ? null : (JSON.parse(r.rejected_by) as string[]),
  leasedMs: r.leased_ms,
  origin: r.origin ?? r.id,
  part: r.part,
  retry: r.retry,
});
export const toWorker = (r: WorkerRow): Worker => ({
  id: r.id,
  name: r.name,
  tokenHash: r.token_hash,
  backend: r.backend,
  lastSeenMs: r.last_seen_ms,
  unitsDone: r.units_done,
  credit: r.credit,
  rejections: r.rejections,
});
export const toResult = (r: ResultDbRow): ResultRow => ({
  unitId: r.unit_id,
  workerId: r.worker_id,
  shard: r.shard,
  baseVersion: r.base_version,
  mergedVersion: r.merged_version,
  status: r.status,
  rule: r.rule,
  reason: r.reason,
  deltaBlob: r.delta_blob,
  samples: r.samples,
  receivedMs: r.received_ms,
});
export const toEval = (r: EvalDbRow): EvalRow => ({
  id: r.id,
  atMs: r.at_ms,
  accepted: r.accepted,
  hardTestAcc: r.hard_test_acc,
  valLoss: r.val_loss,
  checkpointBlob: r.checkpoint_blob,
});
