/**
 * The job flags of `arbor coordinator`, `demo`, `simulate` and `bench distributed`, derived
 * from the one declaration of the job's settings (JobConfigSchema): each flag names the
 * setting it sets, and takes from the schema its type, range or choices, default and help.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import {
  type JobConfig,
  JobConfigSchema,
  overlay,
  parseJobConfig,
  readJobConfigFile,
} from '../coordinator/job/config.ts';
import { parseUntil } from '../coordinator/job/job-goal.ts';
import { DATA_SPECS_HELP } from '../shared/data/load.ts';

interface JobFlag {
  /** As commander takes it: `--name <value>`. */
  readonly flag: string;
  /** The dotted setting it sets. */
  readonly key: string;
  /** Words of the flag's own, where the schema's would not do on a command line. */
  readonly help?: string;
  /** A parser of the flag's own, where the value is not a plain number or string. */
  readonly parse?: (value: string) => unknown;
}

function untilGoal(value: string): JobConfig['until'] {
  try {
    return parseUntil(value);
  } catch (error) {
    throw new InvalidArgumentError(`--until: ${(error as Error).message}.`);
  }
}

function rateList(value: string): number[] {
  const rates = value.split(',').map(Number);
  if (rates.length === 0 || rates.some((r) => !Number.isFinite(r) || r < 0 || r > 10))
    throw new InvalidArgumentError(`--top-lr takes rates from 0 to 10, comma-separated, got '${value}'.`);
  return rates;
}

const JOB_FLAGS: readonly JobFlag[] = [
  { flag: '--data <spec>', key: 'data', help: `dataset: ${DATA_SPECS_HELP}` },
  { flag: '--data-dir <dir>', key: 'data_dir' },
  { flag: '--label <column>', key: 'label' },
  { flag: '--depth <D>', key: 'depth' },
  { flag: '--frozen <K>', key: 'frozen' },
  { flag: '--leaf <L>', key: 'leaf' },
  { flag: '--activation <fn>', key: 'activation' },
  { flag: '--hardening <h>', key: 'hardening' },
  { flag: '--lr <rate>', key: 'lr' },
  { flag: '--batch <n>', key: 'batch' },
  { flag: '--leak <p>', key: 'leak' },
  { flag: '--seed <n>', key: 'seed' },
  { flag: '--pretrain-mode <mode>', key: 'pretrain.mode' },
  { flag: '--pretrain-epochs <n>', key: 'pretrain.epochs' },
  { flag: '--pretrain-leaf <L>', key: 'pretrain.leaf' },
  { flag: '--pretrain-samples <n>', key: 'pretrain.max_samples' },
  { flag: '--balance <w>', key: 'pretrain.balance' },
  { flag: '--shard-epochs <n>', key: 'shard_epochs' },
  {
    flag: '--local-epochs <n>',
    key: 'local_epochs',
    help: 'most passes over its shard in one work unit (default: 12, and never more than --shard-epochs unless given)',
  },
  { flag: '--unit-seconds <s>', key: 'unit_seconds' },
  { flag: '--in-flight-span <f>', key: 'in_flight_span' },
  { flag: '--max-peers <n>', key: 'max_peers' },
  { flag: '--outer-strategy <name>', key: 'outer.strategy' },
  { flag: '--outer-lr <rate>', key: 'outer.lr' },
  { flag: '--outer-round <W>', key: 'outer.round' },
  { flag: '--outer-momentum <m>', key: 'outer.momentum' },
  { flag: '--staleness-discount <f>', key: 'outer.staleness_discount' },
  { flag: '--max-staleness <n>', key: 'outer.max_staleness' },
  { flag: '--stale-correction <how>', key: 'outer.stale_correction' },
  { flag: '--top <mode>', key: 'top.mode' },
  {
    flag: '--top-lr <rates>',
    key: 'top.lr',
    help: 'slow top: rate per level from the root, comma-separated',
    parse: rateList,
  },
  { flag: '--reroute-every <n>', key: 'top.reroute_every' },
  { flag: '--val-fraction <f>', key: 'validation.fraction' },
  { flag: '--val-tolerance <f>', key: 'validation.tolerance' },
  { flag: '--quorum <n>', key: 'validation.quorum' },
  {
    flag: '--until <goal>',
    key: 'until',
    help: "end the job when the goal holds (every shard's schedule ends it anyway): acc:ACCURACY, time:SECONDS (since the job began), plateau[:EVALUATIONS]; comma-separated for the first of several",
    parse: untilGoal,
  },
  { flag: '--eval-every <n>', key: 'eval_every' },
  { flag: '--lease-ms <ms>', key: 'lease_ms' },
  { flag: '--heartbeat-ms <ms>', key: 'heartbeat_ms' },
];

interface SettingSchema {
  readonly type?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly description?: string;
  readonly default?: unknown;
  readonly anyOf?: readonly { readonly const?: unknown }[];
  readonly properties?: Record<string, SettingSchema>;
}

/** The schema of a dotted setting. */
export function settingSchema(key: string): SettingSchema {
  let schema: SettingSchema | undefined = JobConfigSchema as SettingSchema;
  for (const part of key.split('.')) schema = schema?.properties?.[part];
  if (schema === undefined) throw new Error(`no job setting '${key}'`);
  return schema;
}

/** A number flag held to the setting's range, with a one-line error naming the flag. */
function numberIn(name: string, schema: SettingSchema): (value: string) => number {
  const min = schema.minimum ?? -Infinity;
  const max = schema.maximum ?? Infinity;
  const integer = schema.type === 'integer';
  return (value) => {
    const parsed = Number(value);
    if (
      value.trim() === '' ||
      !Number.isFinite(parsed) ||
      (integer && !Number.isInteger(parsed)) ||
      parsed < min ||
      parsed > max
    )
      throw new InvalidArgumentError(
        `${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got '${value}'.`,
      );
    return parsed;
  };
}

/**
 * The parser of a flag of another command that means what a job setting means (`arbor train
 * --leaf`, `arbor bench training --batch`): the same range, from the one declaration.
 */
export const settingArg = (flag: string, key: string): ((value: string) => number) =>
  numberIn(flag, settingSchema(key));

/** A default as typed on the command line: `0.1,0.05` for a list, `none` for an empty goal. */
function shownDefault(value: unknown): string {
  if (Array.isArray(value)) return value.join(',');
  if (typeof value === 'object' && value !== null && Object.keys(value).length === 0) return 'none';
  return JSON.stringify(value).replace(/^"(.*)"$/, '$1');
}

function jobOption({ flag, key, help, parse }: JobFlag, own: Readonly<Record<string, unknown>>): Option {
  const schema = settingSchema(key);
  const option = new Option(flag, help ?? schema.description ?? key);
  const choices = schema.anyOf?.map((member) => member.const);
  if (parse !== undefined) option.argParser(parse);
  else if (choices !== undefined && choices.every((c) => typeof c === 'string'))
    option.choices(choices as string[]);
  else if (schema.type === 'integer' || schema.type === 'number')
    option.argParser(numberIn(option.long!, schema));
  const shown = own[key] ?? schema.default;
  if (shown !== undefined && !option.description.includes('(default:'))
    option.description += ` (default: ${shownDefault(shown)})`;
  return option;
}

/**
 * Adds `--config` and every job flag; `own` names the defaults a command uses instead of
 * the schema's, for the help text.
 */
export function addJobOptions(command: Command, own: Readonly<Record<string, unknown>> = {}): Command {
  command.option('--config <file>', 'job settings as JSON (flags override it)');
  for (const flag of JOB_FLAGS) command.addOption(jobOption(flag, own));
  return command;
}

/** The job settings the user gave (--config, then the job flags over it), before defaults. */
export function requestedJobSettings(opts: Record<string, unknown>): Record<string, unknown> {
  const base = typeof opts['config'] === 'string' ? readJobConfigFile(opts['config']) : {};
  const overrides: Record<string, unknown> = {};
  for (const { flag, key } of JOB_FLAGS) overrides[key] = opts[new Option(flag).attributeName()];
  return overlay(base, overrides);
}

/** The job config from --config and the job flags, validated. */
export function jobConfigFromOptions(opts: Record<string, unknown>): JobConfig {
  return parseJobConfig(
    requestedJobSettings(opts),
    typeof opts['config'] === 'string' ? opts['config'] : 'flags',
  );
}
