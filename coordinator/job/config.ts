/**
 * A distributed training job: every setting, with the defaults found by experiment
 * (BENCHMARKS.md). Comes from a JSON file (`--config`) and/or CLI flags; validated here
 * with TypeBox, so a bad file fails with the path of its first wrong field.
 */
import { readFileSync } from 'node:fs';
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { InputError } from '../../shared/input-error.ts';

const closed = { additionalProperties: false } as const;
const Int = (minimum: number, maximum: number, description: string, dflt: number) =>
  Type.Integer({ minimum, maximum, description, default: dflt });
const Num = (minimum: number, maximum: number, description: string, dflt: number) =>
  Type.Number({ minimum, maximum, description, default: dflt });

export const JobConfigSchema = Type.Object(
  {
    data: Type.String({
      minLength: 1,
      description: 'dataset spec (mnist, fashion-mnist, csv:PATH)',
      default: 'mnist',
    }),
    data_dir: Type.Optional(Type.String({ description: 'IDX directory for fashion-mnist' })),
    label: Type.Optional(Type.String({ description: 'label column for csv data' })),
    depth: Int(2, 16, 'tree depth D', 6),
    frozen: Int(1, 12, 'frozen top levels K: 2^K shards', 2),
    leaf: Int(1, 4096, 'leaf width L', 32),
    activation: Type.Union([Type.Literal('relu'), Type.Literal('tanh')], {
      description: 'leaf activation',
      default: 'relu',
    }),
    hardening: Num(0, 1e3, 'decision-entropy weight h', 3),
    lr: Num(0, 10, 'learning rate of pretraining and local training', 1e-3),
    optimizer: Type.Union([Type.Literal('adam'), Type.Literal('sgd')], { default: 'adam' }),
    batch: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 65536,
        description: 'minibatch (default: chosen per run for ~7,000 steps)',
      }),
    ),
    leak: Num(0, 1, 'region leak probability in local training', 0),
    seed: Int(0, 2 ** 31 - 1, 'random seed', 1),
    pretrain: Type.Object(
      {
        mode: Type.Union(
          [Type.Literal('auto'), Type.Literal('top'), Type.Literal('full'), Type.Literal('levels')],
          {
            description:
              "'top' trains only a depth-K tree with wide temporary leaves; 'full' the whole tree; 'levels' one decision at a time, level by level, split at the median; 'auto' is 'top' up to K=4 and 'levels' beyond",
            default: 'auto',
          },
        ),
        epochs: Int(1, 1000, 'pretraining epochs (half soft with the balance term, half hardening)', 4),
        leaf: Int(1, 4096, "leaf width of the temporary depth-K tree in 'top' mode", 32),
        balance: Num(0, 100, 'weight of the routing-balance term at depth K', 1),
        max_samples: Int(1, 2 ** 31 - 1, 'pretrain on at most this many samples', 60000),
      },
      { ...closed, default: {} },
    ),
    shard_epochs: Int(1, 10000, 'budget: passes over each shard', 12),
    local_epochs: Int(
      1,
      10000,
      'most passes over its shard in one work unit (no more than shard_epochs when not given)',
      12,
    ),
    unit_seconds: Num(
      0.01,
      86_400,
      "a unit is sized to take about this long on its worker's measured speed",
      60,
    ),
    in_flight_span: Num(
      0.001,
      1,
      'a unit, and the units of one shard trained at once together, move its schedule on by at most this share',
      0.125,
    ),
    max_peers: Int(
      1,
      1e6,
      'most units of one shard trained at once: beyond it a crowd gains little (BENCHMARKS.md), so further volunteers wait; a larger crowd wants more shards (frozen)',
      8,
    ),
    outer: Type.Object(
      {
        strategy: Type.Union(
          [Type.Literal('sum'), Type.Literal('delayed-nesterov'), Type.Literal('fedbuff')],
          {
            description:
              "how a shard's accepted deltas become steps: 'sum' applies each whole; 'delayed-nesterov' averages the units in flight together (lr·Δ/N each) and steps the Nesterov momentum once per N; 'fedbuff' buffers N and applies their staleness-weighted mean",
            default: 'delayed-nesterov',
          },
        ),
        lr: Num(0, 10, 'outer learning rate', 1),
        round: Int(
          1,
          1024,
          "delayed-nesterov and fedbuff: results averaged into one step (fewer when fewer units of the shard are in flight); volunteers beyond it make the shard's schedule go faster",
          4,
        ),
        momentum: Num(0, 0.999, 'outer Nesterov momentum', 0),
        staleness_discount: Num(0, 1, 'weight factor per version of staleness', 1),
        max_staleness: Int(0, 1000, 'reject deltas staler than this many versions', 64),
        stale_correction: Type.Union([Type.Literal('none'), Type.Literal('project')], {
          description: "'project': a stale delta loses its projection on what its shard moved since its base",
          default: 'project',
        }),
      },
      { ...closed, default: {} },
    ),
    top: Type.Object(
      {
        mode: Type.Union([Type.Literal('frozen'), Type.Literal('slow')], {
          description:
            "'frozen': the top K levels stay as pretrained; 'slow': workers also train the branch nodes on their path, the coordinator merges them slowly and re-routes now and then",
          default: 'frozen',
        }),
        lr: Type.Array(Type.Number({ minimum: 0, maximum: 10 }), {
          minItems: 1,
          maxItems: 12,
          description:
            'rate at which the mean of the path deltas of a node moves it, per level from the root (the last entry serves deeper levels)',
          default: [0.1],
        }),
        reroute_every: Int(
          1,
          1e6,
          'top updates between re-routes of the training set (it is re-routed at each quarter of the budget too, if the top moved)',
          16,
        ),
        max_staleness: Int(
          0,
          1e6,
          "drop a path delta computed this many top updates ago (the subtree's part still counts)",
          32,
        ),
        tolerance: Num(
          0,
          100,
          "drop a top update that raises the served model's validation loss by more than this factor",
          0.05,
        ),
        max_norm: Num(0, 1e9, 'reject results whose path delta has a larger L2 norm', 100),
        balance: Num(0, 100, "weight of the path nodes' balance term in local training", 1),
      },
      { ...closed, default: {} },
    ),
    validation: Type.Object(
      {
        fraction: Num(0, 0.5, 'share of each shard held out by the coordinator', 0.1),
        tolerance: Num(0, 100, 'reject a delta that raises validation loss by more than this factor', 0.25),
        max_delta_norm: Num(0, 1e9, 'reject deltas with a larger global L2 norm', 1000),
        min_delta_norm: Num(0, 1e9, 'reject deltas with a smaller global L2 norm: they show no work', 1e-3),
        max_retries: Int(0, 100, 'a unit rejected this many more times is retired, not reissued', 5),
        quorum: Int(1, 2, '2: each unit is computed by two workers, merged only when their deltas agree', 1),
        quorum_tolerance: Num(
          0,
          10,
          'quorum: largest relative L2 distance between the two deltas of a unit',
          0.05,
        ),
      },
      { ...closed, default: {} },
    ),
    standing: Type.Object(
      {
        cooldown_after: Int(
          1,
          1000,
          'a worker whose last results were this many rejections in a row waits before its next unit',
          3,
        ),
        cooldown_ms: Int(0, 86_400_000, 'the first wait; it doubles with each further rejection', 30_000),
        bench_after: Int(
          1,
          1000,
          'this many rejections in a row, while others were accepted, and the worker gets no more units',
          10,
        ),
      },
      { ...closed, default: {} },
    ),
    until: Type.Object(
      {
        accuracy: Type.Optional(
          Type.Number({
            exclusiveMinimum: 0,
            maximum: 1,
            description: "end the job once an evaluation's hard test accuracy reaches this",
          }),
        ),
        seconds: Type.Optional(
          Type.Number({
            exclusiveMinimum: 0,
            description: 'end the job this many seconds after training began',
          }),
        ),
        plateau: Type.Optional(
          Type.Integer({
            minimum: 1,
            maximum: 1e6,
            description:
              "end the job once the served model's validation loss has not improved over this many evaluations",
          }),
        ),
      },
      {
        ...closed,
        default: {},
        description:
          "the owner's goal: the job ends at the first of these that holds, and at the end of every shard's schedule at the latest",
      },
    ),
    eval_every: Int(1, 1e6, 'evaluate and checkpoint after this many accepted results', 4),
    lease_ms: Int(100, 86_400_000, 'lease length; heartbeats extend it', 60_000),
    max_leases_per_worker: Int(
      1,
      1000,
      'units one worker may hold at once (more than one only when measured fast)',
      1,
    ),
    max_lease_ms: Int(
      100,
      30 * 86_400_000,
      'longest a lease lasts, however many heartbeats (sooner: 8 × unit_seconds, or 10 leases, whichever is longer)',
      6 * 3_600_000,
    ),
    heartbeat_ms: Int(50, 3_600_000, 'how often workers send progress', 5_000),
    retry_after_ms: Int(10, 3_600_000, 'no_work back-off hint', 2_000),
  },
  closed,
);
export type JobConfig = Static<typeof JobConfigSchema>;

export class ConfigError extends InputError {
  readonly code = 'CONFIG_INVALID' as const;
}

/** Fills defaults into `raw` and validates it; throws ConfigError naming the first bad field. */
export function parseJobConfig(raw: unknown, source = 'job config'): JobConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ConfigError(source, 'must be a JSON object');
  const given = raw as Record<string, unknown>;
  const value = Value.Default(JobConfigSchema, Value.Clone(raw)) as Record<string, unknown>;
  // A default that depends on another setting: a unit's passes never exceed the shard's budget.
  if (given['local_epochs'] === undefined && typeof value['shard_epochs'] === 'number')
    value['local_epochs'] = Math.min(value['local_epochs'] as number, value['shard_epochs']);
  if (!Value.Check(JobConfigSchema, value)) {
    const first = Value.Errors(JobConfigSchema, value).First();
    throw new ConfigError(source, `${first?.path || '/'}: ${first?.message ?? 'invalid'}`);
  }
  const config = value;
  if (config.frozen >= config.depth)
    throw new ConfigError(source, `frozen (${config.frozen}) must be below depth (${config.depth})`);
  if (config.top.mode === 'slow' && config.validation.quorum > 1)
    throw new ConfigError(
      source,
      "top.mode 'slow' cannot be combined with validation.quorum 2: the two workers of a unit would train from different tops and sibling outputs",
    );
  if (config.local_epochs > config.shard_epochs)
    throw new ConfigError(
      source,
      `local_epochs (${config.local_epochs}) exceeds the shard budget shard_epochs (${config.shard_epochs})`,
    );
  return config;
}

export function readJobConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(path, `cannot read: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ConfigError(path, `not JSON: ${(error as Error).message}`);
  }
}

/** Overlays `overrides` (from CLI flags, dotted keys like "outer.lr") onto `base`. */
export function overlay(base: unknown, overrides: Record<string, unknown>): Record<string, unknown> {
  const out = structuredClone((base ?? {}) as Record<string, unknown>);
  for (const [dotted, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    const keys = dotted.split('.');
    let node = out;
    for (const key of keys.slice(0, -1)) {
      const child = node[key];
      node[key] = typeof child === 'object' && child !== null ? child : {};
      node = node[key] as Record<string, unknown>;
    }
    node[keys.at(-1)!] = value;
  }
  return out;
}

/**
 * Settings that change how the job is served, not what it learns: a restart may change them
 * (the others must match the stored job).
 */
export const OPERATIONAL_SETTINGS = [
  'unit_seconds',
  'eval_every',
  'lease_ms',
  'max_leases_per_worker',
  'max_lease_ms',
  'heartbeat_ms',
  'retry_after_ms',
  'standing',
  'until',
] as const;

const isOperational = (key: string): boolean =>
  (OPERATIONAL_SETTINGS as readonly string[]).includes(key.split('.')[0]!);

/** The requested settings split into those that may change on a restart and the rest. */
export function splitRequested(requested: unknown): {
  operational: Record<string, unknown>;
  learning: Record<string, unknown>;
} {
  const operational: Record<string, unknown> = {};
  const learning: Record<string, unknown> = {};
  if (typeof requested === 'object' && requested !== null)
    for (const [key, value] of Object.entries(requested))
      (isOperational(key) ? operational : learning)[key] = value;
  return { operational, learning };
}

/** `base` with the nested settings of `changed` laid on it, key by key. */
export function withSettings(base: unknown, changed: Record<string, unknown>): Record<string, unknown> {
  return overlay(base, Object.fromEntries(leaves(changed)));
}

/** The database holds a job whose settings differ from the ones asked for. */
export class JobMismatchError extends InputError {
  readonly code = 'JOB_MISMATCH' as const;
}

function leaves(value: unknown, prefix = ''): [string, unknown][] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [[prefix, value]];
  return Object.entries(value).flatMap(([key, child]) => leaves(child, prefix ? `${prefix}.${key}` : key));
}

function valueAt(config: unknown, dotted: string): unknown {
  let node = config;
  for (const key of dotted.split('.'))
    node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[key] : undefined;
  return node;
}

/**
 * Each setting in `requested` (only what the user gave: flags, --config) whose value differs
 * from the stored job's, as "key VALUE (stored: VALUE)".
 */
export function settingDifferences(requested: unknown, stored: JobConfig): string[] {
  return leaves(requested)
    .filter(([key, value]) => JSON.stringify(valueAt(stored, key)) !== JSON.stringify(value))
    .map(
      ([key, value]) =>
        `${key} ${JSON.stringify(value)} (stored: ${JSON.stringify(valueAt(stored, key)) ?? 'unset'})`,
    );
}
