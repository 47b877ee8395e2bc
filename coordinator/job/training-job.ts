import { decodeFFF, encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import type { Dataset } from '../../shared/data/dataset.ts';
import { encodeShardData } from '../../shared/data/shard-blob.ts';
import { hardCrossEntropy } from '../../shared/fff/hard-loss.ts';
import { type StepReport } from '../../shared/fff/trainer.ts';
import { extractSubtree, subtreeShape } from '../../shared/fff/subtree.ts';
import { type FFFShape, type FFFWeights, zeroWeights } from '../../shared/fff/weights.ts';
import type { EvalRow, JobPhase, Shard } from '../store/store.ts';
import type { JobConfig } from './config.ts';
import { pretrainMode, pretrainTree, treeShape } from './pretrain.ts';
import { routeShards } from './route-shards.ts';
import { SlowTop } from '../top/slow-top.ts';
import { applySlowRouting } from '../top/slow-routing.ts';
import { type TopNodes, topOfTree } from '../../shared/fff/top-blob.ts';
import { concatDatasets } from '../../shared/data/dataset.ts';
import { servedLossChange } from '../top/served-loss.ts';
import { encodeUnitDelta } from '../../shared/fff/unit-delta.ts';
import { goalReached } from './job-goal.ts';
import { HARD_LEAVES } from './schedule.ts';
import type { JobContext } from './job-context.ts';

export type { JobContext } from './job-context.ts';
import { verifyJobBlobs } from './job-blobs.ts';
import { JobEvaluation } from './job-evaluation.ts';
import { ShardModels } from './shard-models.ts';
import { ShardSchedule } from './shard-schedule.ts';
import type { MergeStrategy } from '../merge/strategy.ts';
import { mergeStrategy } from '../merge/strategies.ts';
import { CreditHistory } from '../credit/credit-history.ts';
import { TopGuard } from '../top/top-guard.ts';

/**
 * The job's model-side state: the pretrained tree with its frozen top, each shard's
 * current subtree and validation slice, evaluation and the end of the job. Everything it
 * knows is in the store and the blob store, so a restarted coordinator picks up here.
 */
export class TrainingJob {
  readonly shape: FFFShape;
  readonly subtreeShape: FFFShape;
  /** The top K levels, when they train slowly instead of staying frozen. */
  readonly top: SlowTop;
  /** How accepted deltas become steps of their shard (`outer.strategy`). */
  readonly merge: MergeStrategy;
  /** Each shard's subtree, outer state, validation slice and measures. */
  readonly models: ShardModels;
  /** The assembled model: evaluations, checkpoints, the end of the job. */
  readonly evaluation: JobEvaluation;
  /** Each shard's schedule: windows, phases, batches, what is left. */
  readonly schedule: ShardSchedule;
  /** Each shard's recent merged deltas and served weights: what a copy would look like. */
  readonly credit: CreditHistory;
  /** Judges each top step on its own, against the best the served top has been. */
  readonly topGuard: TopGuard;
  private treeWeights: FFFWeights | undefined;
  private resultSize: number | undefined;
  private allVal: Dataset | undefined;
  private rerouting: Promise<void> | undefined;
  /** The evaluations from this index on came after every shard reached its hard-leaves phase. */
  private plateauFrom: number | undefined;

  constructor(private readonly ctx: JobContext) {
    this.shape = treeShape(ctx.config, ctx.data.train);
    this.subtreeShape = subtreeShape(this.shape, ctx.config.frozen);
    this.top = new SlowTop(ctx.store, ctx.blobs, ctx.config, ctx.log);
    this.merge = mergeStrategy(ctx.config.outer);
    this.models = new ShardModels(ctx.blobs, this.subtreeShape);
    this.schedule = new ShardSchedule(ctx.store, ctx.config);
    this.credit = new CreditHistory(this.subtreeShape, ctx.config.seed);
    this.topGuard = new TopGuard(ctx.config.top.tolerance);
    this.evaluation = new JobEvaluation(ctx, this.models, this.top, () => this.tree);
  }

  /** Bytes of a unit's result: the encoded delta of one subtree, and of its path (slow top). */
  get resultBytes(): number {
    const K = this.ctx.config.frozen;
    const path = { weight: new Float32Array(K * this.shape.inputWidth), bias: new Float32Array(K) };
    this.resultSize ??= encodeUnitDelta(
      zeroWeights(this.subtreeShape),
      this.top.enabled ? path : undefined,
    ).byteLength;
    return this.resultSize;
  }

  get finalModelPath(): string {
    return this.ctx.finalModelPath;
  }

  get config(): JobConfig {
    return this.ctx.config;
  }

  get phase(): JobPhase {
    return this.ctx.store.getJob()?.phase ?? 'pretraining';
  }

  get tree(): FFFWeights {
    if (this.treeWeights === undefined) throw new Error('the job has not been prepared');
    return this.treeWeights;
  }

  /** Runs whatever of pretraining and routing has not happened yet. */
  async prepare(onPretrainStep?: (report: StepReport) => void): Promise<void> {
    const { store, blobs, config, data, log } = this.ctx;
    const now = () => this.ctx.clock.now();
    store.createJob(JSON.stringify(config), now());
    if (this.phase === 'training' || this.phase === 'done') {
      const started = performance.now();
      const checked = verifyJobBlobs(store, blobs);
      log.info(
        { ...checked, ms: Math.round(performance.now() - started) },
        'blobs verified against their names',
      );
    }
    if (this.phase === 'pretraining') {
      log.info({ mode: pretrainMode(config), epochs: config.pretrain.epochs }, 'pretraining');
      const started = performance.now();
      const tree = await pretrainTree(config, data.train, onPretrainStep);
      const treeBlob = blobs.put(encodeFFF(tree));
      store.transaction(() => {
        store.setJobPhase('routing', now(), treeBlob);
        store.appendEvent(
          'phase',
          { phase: 'routing', pretrain_s: (performance.now() - started) / 1000 },
          now(),
        );
      });
    }
    const job = store.getJob();
    if (job?.treeBlob == null) throw new Error('job row has no pretrained tree');
    this.treeWeights = decodeFFF(blobs.read(job.treeBlob), `blob ${job.treeBlob}`);
    if (this.phase === 'routing') await this.route();
    this.schedule.backfillWindows();
    // A coordinator stopped before a due re-route was written down routes again here.
    await this.rerouteIfDue();
  }

  /**
   * Slow top: re-routes the training set once enough top updates have been merged, in the
   * background (one at a time); the promise settles when it is written down.
   */
  rerouteIfDue(): Promise<void> {
    if (this.rerouting !== undefined) return this.rerouting;
    if (
      !this.top.enabled ||
      this.phase !== 'training' ||
      !this.top.rerouteDue(this.schedule.budgetProgress())
    )
      return Promise.resolve();
    this.rerouting = applySlowRouting(
      this.slowRoutingContext(),
      this.evaluation.assembled(),
      this.top.current()!,
      false,
    )
      .then(() => {
        this.models.forgetData();
        this.allVal = undefined;
      })
      .finally(() => (this.rerouting = undefined));
    return this.rerouting;
  }

  /** Settles when no re-route is running (the simulator and tests wait for it). */
  async settled(): Promise<void> {
    while (this.rerouting !== undefined) await this.rerouting;
  }

  private slowRoutingContext() {
    const { store, blobs, config, data, log } = this.ctx;
    return { store, blobs, config, train: data.train, log, now: () => this.ctx.clock.now() };
  }

  /**
   * Why moving the top `from` -> `to` by a path delta of norm `pathNorm` must not happen
   * (top-guard.ts: its size, the routing balance and the served loss on every validation
   * slice it would cause), or undefined.
   */
  judgeTopStep(from: TopNodes, to: TopNodes, pathNorm: number): string | undefined {
    const shards = this.ctx.store.listShards();
    this.allVal ??= concatDatasets(shards.map((s) => this.models.validationSet(s)));
    const served = shards.map((s) => ({
      id: s.id,
      subtree: this.models.subtree(s),
      valLoss: s.valLoss ?? 0,
      valSamples: this.models.validationSet(s).n,
    }));
    return this.topGuard.judge({
      pathNorm,
      val: this.allVal,
      current: from,
      serving: this.top.serving() ?? from,
      stepped: to,
      served: servedLossChange(served, this.allVal, from, to),
    });
  }

  private async route(): Promise<void> {
    const { store, blobs, config, data, log } = this.ctx;
    const now = () => this.ctx.clock.now();
    if (this.top.enabled) {
      const top = topOfTree(this.tree, config.frozen);
      await applySlowRouting(this.slowRoutingContext(), this.tree, top, true, (sizes) => {
        store.setJobPhase('training', now());
        store.appendEvent('phase', { phase: 'training', shard_sizes: sizes }, now());
      });
      return;
    }
    const shards = routeShards(this.tree, config.frozen, data.train, config.validation.fraction, config.seed);
    const rows: Shard[] = shards.map((shard) => {
      const subtree = extractSubtree(this.tree, config.frozen, shard.id);
      return {
        id: shard.id,
        version: 0,
        samples: shard.train.n,
        dataBlob: blobs.put(encodeShardData(shard.train)),
        weightsBlob: blobs.put(encodeFFF(subtree)),
        budgetSamples: shard.train.n * config.shard_epochs,
        trainedSamples: 0,
        momentumBlob: null,
        valBlob: blobs.put(encodeShardData(shard.val)),
        valLoss: hardCrossEntropy(subtree, shard.val),
      };
    });
    store.transaction(() => {
      for (const row of rows) store.upsertShard(row);
      store.setJobPhase('training', now());
      store.appendEvent('phase', { phase: 'training', shard_sizes: rows.map((r) => r.samples) }, now());
    });
    log.info({ shards: rows.length, sizes: rows.map((r) => r.samples) }, 'routed; training');
  }

  /** When no unit is open: a last evaluation, the final model file, phase 'done'. */
  finishIfComplete(): EvalRow | undefined {
    if (this.phase !== 'training' || this.schedule.openUnits() > 0) return undefined;
    return this.evaluation.finish('every shard trained its schedule');
  }

  /** When the owner's goal (`until`) is met: the job ends now, as at the end of its schedule. */
  finishIfGoalMet(evaluated: boolean): EvalRow | undefined {
    const { until } = this.config;
    if (this.phase !== 'training') return undefined;
    if (!evaluated && until.seconds === undefined) return undefined;
    const started = this.ctx.store.getJob()?.createdMs ?? 0;
    const evals = evaluated ? this.ctx.store.listEvals() : [];
    // The served model's loss means something once every shard trains the served function.
    if (this.plateauFrom === undefined && this.schedule.everyShardPast(HARD_LEAVES))
      this.plateauFrom = evals.length;
    const plateauEvals = this.plateauFrom === undefined ? [] : evals.slice(this.plateauFrom);
    const reason = goalReached(until, evals, (this.ctx.clock.now() - started) / 1000, plateauEvals);
    return reason === undefined ? undefined : this.evaluation.finish(reason);
  }
}
