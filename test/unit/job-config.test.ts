import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  ConfigError,
  type JobConfig,
  overlay,
  parseJobConfig,
  readJobConfigFile,
} from '../../coordinator/job/config.ts';
import { InputError } from '../../shared/input-error.ts';

/** Asserts `fn` throws a ConfigError whose message matches every pattern; returns it. */
function rejects(fn: () => unknown, ...patterns: RegExp[]): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  for (const pattern of patterns) assert.match(caught.message, pattern);
  return caught;
}

void describe('parseJobConfig', () => {
  void it('fills every default into an empty object, nested objects included', () => {
    const config = parseJobConfig({});
    const expected: JobConfig = {
      data: 'mnist',
      depth: 6,
      frozen: 2,
      leaf: 32,
      activation: 'relu',
      hardening: 3,
      lr: 1e-3,
      optimizer: 'adam',
      leak: 0,
      seed: 1,
      pretrain: { mode: 'auto', epochs: 4, leaf: 32, balance: 1, max_samples: 60000 },
      shard_epochs: 12,
      local_epochs: 12,
      unit_seconds: 60,
      in_flight_span: 0.125,
      max_peers: 8,
      outer: {
        strategy: 'delayed-nesterov',
        lr: 1,
        round: 4,
        momentum: 0,
        staleness_discount: 1,
        max_staleness: 64,
        stale_correction: 'project',
      },
      top: {
        mode: 'frozen',
        lr: [0.1],
        reroute_every: 16,
        max_staleness: 32,
        tolerance: 0.05,
        max_norm: 100,
        balance: 1,
      },
      validation: {
        fraction: 0.1,
        tolerance: 0.25,
        max_delta_norm: 1000,
        min_delta_norm: 1e-3,
        max_retries: 5,
        quorum: 1,
        quorum_tolerance: 0.05,
      },
      standing: { cooldown_after: 3, cooldown_ms: 30_000, bench_after: 10 },
      until: {},
      eval_every: 4,
      lease_ms: 60_000,
      max_leases_per_worker: 1,
      max_lease_ms: 21_600_000,
      heartbeat_ms: 5_000,
      retry_after_ms: 2_000,
    };
    assert.deepEqual(config, expected);
    assert.equal(config.batch, undefined, 'batch stays unset so each run picks it for ~7,000 steps');
    assert.equal(config.data_dir, undefined);
    assert.equal(config.label, undefined);
  });

  void it('derives the passes a unit makes from a smaller shard budget, and refuses more when asked', () => {
    assert.equal(parseJobConfig({ shard_epochs: 4 }).local_epochs, 4);
    assert.equal(parseJobConfig({ shard_epochs: 40 }).local_epochs, 12, 'the default, when it fits');
    assert.equal(parseJobConfig({ shard_epochs: 4, local_epochs: 2 }).local_epochs, 2);
    assert.throws(
      () => parseJobConfig({ shard_epochs: 4, local_epochs: 12 }),
      /local_epochs \(12\) exceeds the shard budget shard_epochs \(4\)/,
    );
  });

  void it('refuses a slow top with a quorum of two', () => {
    assert.throws(
      () => parseJobConfig({ top: { mode: 'slow' }, validation: { quorum: 2 } }),
      /cannot be combined with validation.quorum 2/,
    );
    assert.equal(parseJobConfig({ top: { mode: 'slow' } }).top.mode, 'slow');
  });

  void it('a partial nested object keeps the other nested defaults', () => {
    const config = parseJobConfig({
      pretrain: { epochs: 1 },
      outer: { lr: 0.7 },
      validation: { fraction: 0 },
    });
    assert.deepEqual(config.pretrain, { mode: 'auto', epochs: 1, leaf: 32, balance: 1, max_samples: 60000 });
    assert.deepEqual(config.outer, {
      strategy: 'delayed-nesterov',
      lr: 0.7,
      round: 4,
      momentum: 0,
      staleness_discount: 1,
      max_staleness: 64,
      stale_correction: 'project',
    });
    assert.deepEqual(config.validation, {
      fraction: 0,
      tolerance: 0.25,
      max_delta_norm: 1000,
      min_delta_norm: 1e-3,
      max_retries: 5,
      quorum: 1,
      quorum_tolerance: 0.05,
    });
  });

  void it('keeps the values it is given', () => {
    const config = parseJobConfig({
      data: 'csv:/tmp/x.csv',
      label: 'target',
      depth: 8,
      frozen: 3,
      activation: 'tanh',
      optimizer: 'sgd',
      batch: 64,
      shard_epochs: 20,
      local_epochs: 5,
      pretrain: { mode: 'full' },
    });
    assert.equal(config.data, 'csv:/tmp/x.csv');
    assert.equal(config.label, 'target');
    assert.equal(config.depth, 8);
    assert.equal(config.frozen, 3);
    assert.equal(config.activation, 'tanh');
    assert.equal(config.optimizer, 'sgd');
    assert.equal(config.batch, 64);
    assert.equal(config.local_epochs, 5);
    assert.equal(config.pretrain.mode, 'full');
  });

  void it('does not mutate its input', () => {
    const raw = { depth: 4, outer: { lr: 2 } };
    const copy = structuredClone(raw);
    parseJobConfig(raw);
    assert.deepEqual(raw, copy);
  });

  void it('names the path of a bad value', () => {
    rejects(() => parseJobConfig({ depth: 'x' }), /\/depth\b/);
    rejects(() => parseJobConfig({ depth: 3.5 }), /\/depth\b/);
    rejects(() => parseJobConfig({ depth: 17 }), /\/depth\b/);
    rejects(() => parseJobConfig({ outer: { momentum: 2 } }), /\/outer\/momentum\b/);
    rejects(() => parseJobConfig({ pretrain: { mode: 'middle' } }), /\/pretrain\/mode\b/);
    rejects(() => parseJobConfig({ validation: { fraction: -0.1 } }), /\/validation\/fraction\b/);
    rejects(() => parseJobConfig({ activation: 'gelu' }), /\/activation\b/);
    rejects(() => parseJobConfig({ data: '' }), /\/data\b/);
    rejects(() => parseJobConfig({ lease_ms: 10 }), /\/lease_ms\b/);
    rejects(() => parseJobConfig({ pretrain: 5 }), /\/pretrain\b/);
  });

  void it('rejects unknown keys, top-level and nested', () => {
    rejects(() => parseJobConfig({ bogus: 1 }), /\/bogus\b/);
    rejects(() => parseJobConfig({ outer: { bogus: 1 } }), /\/outer\/bogus\b/);
    rejects(() => parseJobConfig({ pretrain: { epoch: 2 } }), /\/pretrain\/epoch\b/);
  });

  void it('rejects frozen >= depth', () => {
    rejects(() => parseJobConfig({ depth: 4, frozen: 4 }), /frozen \(4\) must be below depth \(4\)/);
    rejects(() => parseJobConfig({ depth: 4, frozen: 5 }), /frozen \(5\) must be below depth \(4\)/);
    rejects(() => parseJobConfig({ frozen: 6 }), /frozen \(6\) must be below depth \(6\)/);
    assert.equal(parseJobConfig({ depth: 4, frozen: 3 }).frozen, 3);
  });

  void it('rejects local_epochs > shard_epochs', () => {
    rejects(
      () => parseJobConfig({ local_epochs: 13 }),
      /local_epochs \(13\) exceeds the shard budget shard_epochs \(12\)/,
    );
    rejects(
      () => parseJobConfig({ shard_epochs: 2, local_epochs: 3 }),
      /local_epochs \(3\).*shard_epochs \(2\)/,
    );
    assert.equal(parseJobConfig({ shard_epochs: 3, local_epochs: 3 }).local_epochs, 3);
  });

  void it('rejects input that is not an object', () => {
    for (const raw of [null, undefined, [], [{}], 'mnist', 6, true]) {
      rejects(() => parseJobConfig(raw), /must be a JSON object/);
    }
  });

  void it('ConfigError has code CONFIG_INVALID and names its source', () => {
    const error = rejects(() => parseJobConfig({ depth: 'x' }, 'jobs/a.json'), /^jobs\/a\.json: /);
    assert.equal(error.code, 'CONFIG_INVALID');
    assert.equal(error.name, 'ConfigError');
    assert.equal(error.source, 'jobs/a.json');
    assert.match(error.problem, /\/depth/);
    assert.ok(error instanceof InputError);
    assert.match(rejects(() => parseJobConfig(null)).message, /^job config: /, 'default source');
  });
});

void describe('overlay', () => {
  void it('applies dotted keys, creating nested objects as needed', () => {
    const base = { depth: 6, outer: { lr: 1, momentum: 0.5 } };
    const out = overlay(base, { depth: 8, 'outer.lr': 0.3, 'pretrain.epochs': 2, 'a.b.c': 'deep' });
    assert.deepEqual(out, {
      depth: 8,
      outer: { lr: 0.3, momentum: 0.5 },
      pretrain: { epochs: 2 },
      a: { b: { c: 'deep' } },
    });
  });

  void it('skips undefined overrides but keeps other falsy ones', () => {
    const out = overlay({ depth: 6, outer: { lr: 1 } }, { depth: undefined, 'outer.lr': undefined, leak: 0 });
    assert.deepEqual(out, { depth: 6, outer: { lr: 1 }, leak: 0 });
    const nulls = overlay({ label: 'y' }, { label: null, data: '' });
    assert.deepEqual(nulls, { label: null, data: '' });
  });

  void it('does not mutate its input', () => {
    const base = { depth: 6, outer: { lr: 1 }, list: [1, 2] };
    const copy = structuredClone(base);
    const out = overlay(base, { 'outer.lr': 2, depth: 3 });
    assert.deepEqual(base, copy);
    assert.notEqual(out.outer, base.outer);
    (out.list as number[]).push(3);
    assert.deepEqual(base.list, [1, 2]);
  });

  void it('starts from an empty object when the base is undefined or null', () => {
    assert.deepEqual(overlay(undefined, { 'outer.lr': 2 }), { outer: { lr: 2 } });
    assert.deepEqual(overlay(null, { depth: 4 }), { depth: 4 });
    assert.deepEqual(overlay({ a: 1 }, {}), { a: 1 });
  });

  void it('replaces a non-object on the dotted path', () => {
    assert.deepEqual(overlay({ outer: 5 }, { 'outer.lr': 2 }), { outer: { lr: 2 } });
  });

  void it('feeds parseJobConfig', () => {
    const config = parseJobConfig(overlay({ depth: 5, outer: { lr: 0.5 } }, { 'outer.momentum': 0.9 }));
    assert.equal(config.depth, 5);
    assert.deepEqual(config.outer, {
      strategy: 'delayed-nesterov',
      lr: 0.5,
      round: 4,
      momentum: 0.9,
      staleness_discount: 1,
      max_staleness: 64,
      stale_correction: 'project',
    });
  });
});

void describe('readJobConfigFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'arbor-job-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  void it('reads and parses a JSON file', () => {
    const path = join(dir, 'good.json');
    writeFileSync(path, JSON.stringify({ depth: 4, outer: { lr: 0.5 } }));
    assert.deepEqual(readJobConfigFile(path), { depth: 4, outer: { lr: 0.5 } });
  });

  void it('a missing file throws ConfigError naming the file', () => {
    const path = join(dir, 'missing.json');
    const error = rejects(() => readJobConfigFile(path), /cannot read/);
    assert.equal(error.source, path);
    assert.ok(error.message.startsWith(`${path}: `));
    assert.equal(error.code, 'CONFIG_INVALID');
  });

  void it('invalid JSON throws ConfigError naming the file', () => {
    const path = join(dir, 'bad.json');
    writeFileSync(path, '{ "depth": 4,, }');
    const error = rejects(() => readJobConfigFile(path), /not JSON/);
    assert.equal(error.source, path);
    assert.ok(error.message.startsWith(`${path}: `));
    const empty = join(dir, 'empty.json');
    writeFileSync(empty, '');
    assert.equal(rejects(() => readJobConfigFile(empty), /not JSON/).source, empty);
  });

  void it('valid JSON that is not an object is returned for parseJobConfig to reject', () => {
    const path = join(dir, 'array.json');
    writeFileSync(path, '[1, 2]');
    const raw = readJobConfigFile(path);
    assert.deepEqual(raw, [1, 2]);
    rejects(() => parseJobConfig(raw, path), /must be a JSON object/);
  });
});
