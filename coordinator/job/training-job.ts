import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { decodeFFF, encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import type { DataSplit, Dataset } from '../../shared/data/dataset.ts';
import { provenanceMetadata } from '../../shared/data/provenance.ts';
import { decodeShardData, encodeShardData } from '../../shared/data/shard-blob.ts';
import { hardCrossEntropy } from '../../shared/fff/hard-loss.ts';
import { autoBatchSize } from '../../shared/fff/recipe.ts';
import { softObjective } from '../../shared/fff/soft-loss.ts';
import { compileHardInference } from '../../shared/fff/hard-inference.ts';
import { type StepReport, samplesOfRun } from '../../shared/fff/trainer.ts';
import { assembleSubtrees, extractSubtree, subtreeShape } from '../../shared/fff/subtree.ts';
import { type FFFShape, type FFFWeights, zeroWeights } from '../../shared/fff/weights.ts';
import type { BlobStore } from '../store/blob-store.ts';
import type { Clock } from '../../shared/clock.ts';
import type { EvalRow, JobPhase, Shard, Store, UnitWindow } from '../store/store.ts';
import type { JobConfig } from './config.ts';
import { pretrainMode, pretrainTree, treeShape } from './pretrain.ts';
import { routeShards } from './route-shards.ts';
import { type ValidationPhase, legacyWindow, phaseAt } from './schedule.ts';
import { SlowTop } from '../top/slow-top.ts';
import { applySlowRouting } from '../top/slow-routing.ts';
import { type TopNodes, topOfTree, withTop } from '../../shared/fff/top-blob.ts';
import { concatDatasets } from '../../shared/data/dataset.ts';
import { servedLossChange } from '../top/served-loss.ts';
import { encodeUnitDelta } from '../../shared/fff/unit-delta.ts';
import { type OuterState, decodeOuterState, emptyOuterState } from '../merge/outer-state.ts';
import { goalReached } from './job-goal.ts';
import type { MergeStrategy } from '../merge/strategy.ts';
import { mergeStrategy } from '../merge/strategies.ts';

export interface JobContext {
  readonly store: Store;
  readonly blobs: BlobStore;
  readonly config: JobConfig;
  readonly data: DataSplit;
  readonly log: Logger;
  readonly clock: Clock;
  /** Where the final model is written when the job ends. */
  readonly finalModelPath: string;
}

/** A unit as far as its window goes (a plain id is a unit of its round). */
export type UnitRef = {
  readonly id: string;
  readonly window?: UnitWindow | null;
  /** The shard's size when the unit was leased. */
  readonly baseSamples?: number | null;
};

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
  private treeWeights: FFFWeights | undefined;
  private readonly weightsByBlob = new Map<number, { blob: string; weights: FFFWeights }>();
  private readonly valByShard = new Map<number, Dataset>();
  private resultSize: number | undefined;
  private readonly measured = new Map<string, number>();
  private readonly decodedBlobs = new Map<string, FFFWeights>();
  private allVal: Dataset | undefined;
  private rerouting: Promise<void> | undefined;

  constructor(private readonly ctx: JobContext) {
    this.shape = treeShape(ctx.config, ctx.data.train);
    this.subtreeShape = subtreeShape(this.shape, ctx.config.frozen);
    this.top = new SlowTop(ctx.store, ctx.blobs, ctx.config, ctx.log);
    this.merge = mergeStrategy(ctx.config.outer);
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
    this.backfillWindows();
    // A coordinator stopped before a due re-route was written down routes again here.
    await this.rerouteIfDue();
  }

  /**
   * Slow top: re-routes the training set once enough top updates have been merged, in the
   * background (one at a time); the promise settles when it is written down.
   */
  rerouteIfDue(): Promise<void> {
    if (this.rerouting !== undefined) return this.rerouting;
    if (!this.top.enabled || this.phase !== 'training' || !this.top.rerouteDue(this.budgetProgress()))
      return Promise.resolve();
    this.rerouting = applySlowRouting(this.slowRoutingContext(), this.assembled(), this.top.current()!, false)
      .then(() => {
        this.valByShard.clear();
        this.measured.clear();
        this.allVal = undefined;
      })
      .finally(() => (this.rerouting = undefined));
    return this.rerouting;
  }

  /** Settles when no re-route is running (the simulator and tests wait for it). */
  async settled(): Promise<void> {
    while (this.rerouting !== undefined) await this.rerouting;
  }

  /** Share of the job's sample budget trained so far (0..1). */
  budgetProgress(): number {
    const shards = this.ctx.store.listShards();
    const budget = shards.reduce((sum, s) => sum + s.budgetSamples, 0);
    const trained = shards.reduce((sum, s) => sum + Math.min(s.trainedSamples, s.budgetSamples), 0);
    return budget > 0 ? trained / budget : 0;
  }

  private slowRoutingContext() {
    const { store, blobs, config, data, log } = this.ctx;
    return { store, blobs, config, train: data.train, log, now: () => this.ctx.clock.now() };
  }

  /**
   * What moving the top `from` -> `to` does to the served model's loss on every validation
   * slice: the loss now (the shards' own) and its change, from the samples whose route changes.
   */
  servedLossChange(from: TopNodes, to: TopNodes): { before: number; change: number } {
    const shards = this.ctx.store.listShards();
    this.allVal ??= concatDatasets(shards.map((s) => this.validationSet(s)));
    const served = shards.map((s) => ({
      id: s.id,
      subtree: this.subtree(s),
      valLoss: s.valLoss ?? 0,
      valSamples: this.validationSet(s).n,
    }));
    return servedLossChange(served, this.allVal, from, to);
  }

  /** Units of jobs begun before units were cut by size get their round's window written down. */
  private backfillWindows(): void {
    const { store } = this.ctx;
    const legacy = store.listUnits().filter((unit) => unit.window === null);
    if (legacy.length === 0) return;
    store.transaction(() => {
      for (const unit of legacy) store.setUnitWindow(unit.id, this.windowOf(unit));
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

  /** The shard's current subtree (decoded once per version). */
  subtree(shard: Shard): FFFWeights {
    const cached = this.weightsByBlob.get(shard.id);
    if (cached?.blob === shard.weightsBlob) return cached.weights;
    const weights = decodeFFF(this.ctx.blobs.read(shard.weightsBlob), `blob ${shard.weightsBlob}`);
    this.weightsByBlob.set(shard.id, { blob: shard.weightsBlob, weights });
    return weights;
  }

  /** Weights kept in the blob store (a unit's base), decoded once while in use. */
  weightsOfBlob(blob: string): FFFWeights {
    let weights = this.decodedBlobs.get(blob);
    if (weights === undefined) {
      weights = decodeFFF(this.ctx.blobs.read(blob), `blob ${blob}`);
      if (this.decodedBlobs.size >= 32) this.decodedBlobs.delete(this.decodedBlobs.keys().next().value!);
      this.decodedBlobs.set(blob, weights);
    }
    return weights;
  }

  rememberSubtree(shard: number, blob: string, weights: FFFWeights): void {
    this.weightsByBlob.set(shard, { blob, weights });
  }

  /** The shard's outer-optimizer state (momentum, deltas of the round so far). */
  outerState(shard: Shard): OuterState {
    return shard.momentumBlob
      ? decodeOuterState(
          this.ctx.blobs.read(shard.momentumBlob),
          this.subtreeShape,
          `blob ${shard.momentumBlob}`,
        )
      : emptyOuterState(this.subtreeShape);
  }

  validationSet(shard: Shard): Dataset {
    const cached = this.valByShard.get(shard.id);
    if (cached) return cached;
    if (!shard.valBlob) throw new Error(`shard ${shard.id} has no validation blob`);
    const val = decodeShardData(this.ctx.blobs.read(shard.valBlob), `blob ${shard.valBlob}`);
    this.valByShard.set(shard.id, val);
    return val;
  }

  /** The top (frozen, or as the data was last routed by) + every shard's current subtree. */
  assembled(): FFFWeights {
    const serving = this.top.serving();
    return assembleSubtrees(
      serving ? withTop(this.tree, serving) : this.tree,
      this.ctx.config.frozen,
      this.ctx.store.listShards().map((s) => this.subtree(s)),
    );
  }

  /** A model as an Arbor checkpoint that names its data (`arbor eval` reads it). */
  checkpoint(model: FFFWeights = this.assembled()): Uint8Array {
    return encodeFFF(model, {
      kind: 'arbor-checkpoint',
      ...provenanceMetadata({
        spec: this.config.data,
        ...(this.config.data_dir !== undefined ? { dataDir: this.config.data_dir } : {}),
        ...(this.config.label !== undefined ? { label: this.config.label } : {}),
        seed: this.config.seed,
      }),
    });
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
    const valSamples = shards.reduce((sum, s) => sum + this.validationSet(s).n, 0);
    const valLoss =
      shards.reduce((sum, s) => sum + (s.valLoss ?? 0) * this.validationSet(s).n, 0) /
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

  /**
   * The shard's schedule (soft, hardening, hard leaves) runs over its whole budget; a unit
   * trains its window of it, so that short units follow one long recipe.
   */
  scheduleOf(unit: UnitRef): { epochs: number; from: number; to: number } {
    const { from, to } = this.windowOf(unit);
    return { epochs: this.config.shard_epochs, from, to };
  }

  /**
   * The training phase a unit's window ends in, which decides how its result is validated:
   * hard-routed phases by the served model's loss, soft ones by their own objective.
   */
  validationPhase(unit: UnitRef): ValidationPhase {
    return phaseAt(this.config, this.windowOf(unit).to);
  }

  /** The validation measure of `phase` for `weights` on the shard's validation slice. */
  validationMeasure(weights: FFFWeights, shard: Shard, phase: ValidationPhase): number {
    const val = this.validationSet(shard);
    return phase.routing === 'hard'
      ? hardCrossEntropy(weights, val)
      : softObjective(weights, val, phase.hardening);
  }

  /** The measure of the shard's current weights (each weights blob is measured once a phase). */
  currentMeasure(shard: Shard, phase: ValidationPhase): number {
    const key = `${shard.weightsBlob}:${phase.name}`;
    let value = this.measured.get(key);
    if (value === undefined) {
      value = this.validationMeasure(this.subtree(shard), shard, phase);
      if (this.measured.size > 256) this.measured.clear();
      this.measured.set(key, value);
    }
    return value;
  }

  /** The minibatch of a shard's units: set, or chosen for its whole schedule. */
  batchOf(shard: Shard): number {
    return this.config.batch ?? autoBatchSize(shard.samples, this.config.shard_epochs);
  }

  /** The unit's stretch of its shard's schedule (units of older jobs: their round's). */
  windowOf(unit: UnitRef): UnitWindow {
    if (unit.window) return unit.window;
    const stored = unit.window === undefined ? this.ctx.store.getUnit(unit.id)?.window : null;
    if (stored) return stored;
    return legacyWindow(this.config, unit.id);
  }

  /** Samples a whole unit trains: what its full result is credited with. */
  unitSamples(shard: Shard, unit: UnitRef): number {
    const samples = unit.baseSamples ?? shard.samples;
    return samplesOfRun(this.windowOf(unit).epochs, samples, this.batchOf(shard));
  }

  /** Units still to be trained or merged, and shards with budget not yet cut into units. */
  openUnits(): number {
    const counts = this.ctx.store.unitsByState();
    const cut = this.ctx.store.cutProgress();
    const uncut = this.ctx.store
      .listShards()
      .filter((s) => s.samples > 0 && (cut.get(s.id) ?? 0) < 1 - 1e-9).length;
    return counts.ready + counts.leased + counts.submitted + uncut;
  }

  /** When no unit is open: a last evaluation, the final model file, phase 'done'. */
  finishIfComplete(): EvalRow | undefined {
    if (this.phase !== 'training' || this.openUnits() > 0) return undefined;
    return this.finish('every shard trained its schedule');
  }

  /** When the owner's goal (`until`) is met: the job ends now, as at the end of its schedule. */
  finishIfGoalMet(evaluated: boolean): EvalRow | undefined {
    const { until } = this.config;
    if (this.phase !== 'training') return undefined;
    if (!evaluated && until.seconds === undefined) return undefined;
    const started = this.ctx.store.getJob()?.createdMs ?? 0;
    const evals = evaluated ? this.ctx.store.listEvals() : [];
    const reason = goalReached(until, evals, (this.ctx.clock.now() - started) / 1000);
    return reason === undefined ? undefined : this.finish(reason);
  }

  private finish(reason: string): EvalRow {
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
