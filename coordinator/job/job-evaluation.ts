/**
 * What the job has made so far: the assembled model (the top + every shard's subtree), its
 * hard test accuracy, the evaluations and checkpoints of the time series, and the final
 * model written when the job ends.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { withChecksum } from '../../shared/checkpoint/checkpoint-checksum.ts';
import { encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import { provenanceMetadata } from '../../shared/data/provenance.ts';
import { compileHardInference } from '../../shared/fff/hard-inference.ts';
import { assembleSubtrees } from '../../shared/fff/subtree.ts';
import { withTop } from '../../shared/fff/top-blob.ts';
import type { FFFWeights } from '../../shared/fff/weights.ts';
import type { SlowTop } from '../top/slow-top.ts';
import type { EvalRow } from '../store/store.ts';
import type { JobContext } from './job-context.ts';
import type { ShardModels } from './shard-models.ts';

export class JobEvaluation {
  constructor(
    private readonly ctx: JobContext,
    private readonly models: ShardModels,
    private readonly top: SlowTop,
    private readonly tree: () => FFFWeights,
  ) {}

  /** The top (frozen, or as the data was last routed by) + every shard's current subtree. */
  assembled(): FFFWeights {
    const serving = this.top.serving();
    const tree = this.tree();
    return assembleSubtrees(
      serving ? withTop(tree, serving) : tree,
      this.ctx.config.frozen,
      this.ctx.store.listShards().map((s) => this.models.subtree(s)),
    );
  }

  /** A model as an Arbor checkpoint that names its data and carries its checksum (`arbor eval` reads it). */
  checkpoint(model: FFFWeights = this.assembled()): Uint8Array {
    const { config } = this.ctx;
    const bytes = encodeFFF(model, {
      kind: 'arbor-checkpoint',
      ...provenanceMetadata({
        spec: config.data,
        ...(config.data_dir !== undefined ? { dataDir: config.data_dir } : {}),
        ...(config.label !== undefined ? { label: config.label } : {}),
        seed: config.seed,
      }),
    });
    return withChecksum(bytes);
  }

  /** Hard test accuracy of `model` (default: the assembled model served now). */
  testAccuracy(model: FFFWeights = this.assembled()): number {
    const { test } = this.ctx.data;
    const predicted = compileHardInference(model).predictClasses(test.x, test.n);
    let correct = 0;
    for (let i = 0; i < test.n; i++) if (predicted[i] === test.y[i]) correct++;
    return correct / Math.max(1, test.n);
  }

  /** Hard test accuracy of the assembled model, a checkpoint blob, and a row in the series. */
  evaluate(): EvalRow {
    const { store, blobs } = this.ctx;
    const model = this.assembled();
    const hardTestAcc = this.testAccuracy(model);
    const shards = store.listShards();
    const valSamples = shards.reduce((sum, s) => sum + this.models.validationSet(s).n, 0);
    const valLoss =
      shards.reduce((sum, s) => sum + (s.valLoss ?? 0) * this.models.validationSet(s).n, 0) /
      Math.max(1, valSamples);
    const row = {
      atMs: this.ctx.clock.now(),
      accepted: store.resultCounts().accepted,
      hardTestAcc,
      valLoss,
      checkpointBlob: blobs.put(this.checkpoint(model)),
    };
    const id = store.transaction(() => {
      const inserted = store.addEval(row);
      store.appendEvent(
        'eval',
        { hard_test_acc: row.hardTestAcc, val_loss: valLoss, accepted: row.accepted },
        row.atMs,
      );
      return inserted;
    });
    return { id, ...row };
  }

  /** The end of the job: a last evaluation, the final model file, phase 'done'. */
  finish(reason: string): EvalRow {
    const { store, blobs, log, finalModelPath } = this.ctx;
    const now = () => this.ctx.clock.now();
    const last = this.evaluate();
    mkdirSync(dirname(finalModelPath), { recursive: true });
    writeFileSync(`${finalModelPath}.tmp`, blobs.read(last.checkpointBlob));
    renameSync(`${finalModelPath}.tmp`, finalModelPath);
    store.transaction(() => {
      store.setJobPhase('done', now());
      store.appendEvent('phase', { phase: 'done', hard_test_acc: last.hardTestAcc, reason }, now());
    });
    log.info({ hard_test_acc: last.hardTestAcc, final_model: finalModelPath, reason }, 'job done');
    return last;
  }
}
