import type { Logger } from 'pino';
import type { AssignedTop } from '../../proto/messages.ts';
import type { PathNodes } from '../../shared/fff/path-model.ts';
import { pathOf } from '../../shared/fff/path-model.ts';
import { type TopNodes, decodeTop, encodeTop } from '../../shared/fff/top-blob.ts';
import type { BlobStore } from '../store/blob-store.ts';
import type { Shard, Store, TopRow, Unit } from '../store/store.ts';

/** The job settings the top reads (a JobConfig has them). */
export interface TopSettings {
  readonly frozen: number;
  readonly shard_epochs: number;
  readonly seed: number;
  readonly validation: { readonly fraction: number };
  readonly top: {
    readonly mode: 'frozen' | 'slow';
    readonly lr: readonly number[];
    readonly reroute_every: number;
    readonly max_staleness: number;
    readonly balance: number;
  };
}

/** Re-routes at a quarter, half and three quarters of the budget, whatever the updates. */
const PROGRESS_REROUTES = 3;

/** A path delta as it would move the top, or why it does not. */
export type TopStep =
  | { readonly top: TopNodes; readonly staleness: number; readonly nodes: number[]; readonly sizes: number[] }
  | { readonly dropped: string };

/**
 * The top K levels when they are not frozen: the version workers train their paths from,
 * the version the shards' data was routed by (and the served model uses), and how a path
 * delta moves the top.
 */
export class SlowTop {
  private readonly decoded = new Map<string, TopNodes>();

  constructor(
    private readonly store: Store,
    private readonly blobs: BlobStore,
    private readonly config: TopSettings,
    private readonly log: Logger,
  ) {}

  get enabled(): boolean {
    return this.config.top.mode === 'slow';
  }

  row(): TopRow | undefined {
    return this.enabled ? this.store.getTop() : undefined;
  }

  nodes(blob: string): TopNodes {
    let top = this.decoded.get(blob);
    if (top === undefined) {
      top = decodeTop(this.blobs.read(blob), `blob ${blob}`);
      if (this.decoded.size >= 8) this.decoded.delete(this.decoded.keys().next().value!);
      this.decoded.set(blob, top);
    }
    return top;
  }

  /** The top workers train from now. */
  current(): TopNodes | undefined {
    const row = this.row();
    return row && this.nodes(row.blob);
  }

  /** The top the shards' data was last routed by: the served model's. */
  serving(): TopNodes | undefined {
    const row = this.row();
    return row && this.nodes(row.routingBlob);
  }

  /** What a unit of `shard` is told about the top, when the top is slow. */
  assigned(shard: Shard): AssignedTop | undefined {
    const row = this.row();
    if (row === undefined || !shard.contextBlob) return undefined;
    return {
      version: row.version,
      levels: this.config.frozen,
      blob: { sha256: row.blob, bytes: this.blobs.size(row.blob) },
      siblings_blob: { sha256: shard.contextBlob, bytes: this.blobs.size(shard.contextBlob) },
      balance: this.config.top.balance,
    };
  }

  /** The path nodes a unit's result may carry a delta for (undefined: none). */
  levelsFor(unit: Unit): number | undefined {
    return this.enabled && unit.baseTop !== null ? this.config.frozen : undefined;
  }

  /**
   * Each node of the path moves by its level's rate times the mean of the path deltas of
   * the shards beneath it (2^(K-k) shards share a node at level k).
   */
  step(unit: Unit, path: PathNodes): TopStep {
    const row = this.row();
    if (row === undefined || unit.baseTop === null) return { dropped: 'the unit was leased without a top' };
    const staleness = row.version - unit.baseTop;
    if (staleness > this.config.top.max_staleness)
      return { dropped: `stale: ${staleness} top updates behind (limit ${this.config.top.max_staleness})` };
    const current = this.nodes(row.blob);
    const K = this.config.frozen;
    const I = current.inputWidth;
    const weight = current.weight.slice();
    const bias = current.bias.slice();
    const { nodes } = pathOf(unit.shard, K);
    const rates = this.config.top.lr;
    const sizes = nodes.map((node, k) => {
      const rate = rates[Math.min(k, rates.length - 1)]! / 2 ** (K - k);
      let squares = 0;
      for (let i = 0; i < I; i++) {
        const change = rate * path.weight[k * I + i]!;
        weight[node * I + i]! += change;
        squares += change * change;
      }
      const change = rate * path.bias[k]!;
      bias[node]! += change;
      return Math.sqrt(squares + change * change);
    });
    return { top: { ...current, weight, bias }, staleness, nodes, sizes };
  }

  /** Records a merged top step (inside the intake's transaction). */
  commit(step: Extract<TopStep, { top: TopNodes }>, shard: number, now: number): number {
    const row = this.row()!;
    const blob = this.blobs.put(encodeTop(step.top));
    const version = row.version + 1;
    this.store.setTop({ ...row, blob, version });
    this.store.appendEvent(
      'top',
      {
        version,
        shard,
        staleness: step.staleness,
        nodes: step.nodes,
        sizes: step.sizes.map((size) => Number(size.toPrecision(4))),
      },
      now,
    );
    this.log.debug({ top_version: version, shard, sizes: step.sizes }, 'top moved');
    return version;
  }

  /**
   * After `reroute_every` top updates, or once the job is another quarter of the way through
   * its budget (`progress`, 0..1) with the top moved since: jobs of few large units re-route too.
   */
  rerouteDue(progress: number): boolean {
    const row = this.row();
    if (row === undefined || row.version === row.routedVersion) return false;
    const quarters = Math.min(PROGRESS_REROUTES, Math.floor(progress * (PROGRESS_REROUTES + 1) + 1e-9));
    return row.version - row.routedVersion >= this.config.top.reroute_every || row.routingVersion < quarters;
  }
}
