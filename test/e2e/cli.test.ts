import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseJobConfig } from '../../coordinator/job/config.ts';
import { CHECKSUM_KEY } from '../../shared/checkpoint/fff-checkpoint.ts';
import { writeFFF } from '../../shared/checkpoint/fff-file.ts';
import { decodeSafetensors } from '../../shared/checkpoint/safetensors.ts';
import { initWeights } from '../../shared/fff/init.ts';
import { joinScript } from '../../proto/dashboard.ts';
import { spawnArbor, waitFor } from '../helpers/processes.ts';

const run = promisify(execFile);
const arbor = (args: string[]) => run(process.execPath, ['bin/arbor.js', ...args], { timeout: 120_000 });
const dir = mkdtempSync(join(tmpdir(), 'arbor-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

void describe('arbor CLI', () => {
  const model = join(dir, 'model.safetensors');

  void it('train --json trains past chance on embedded MNIST, writes a checkpoint that eval agrees with', async () => {
    const { stdout } = await arbor([
      'train',
      '--data',
      'mnist',
      '--depth',
      '3',
      '--epochs',
      '3',
      '--frozen',
      '1',
      '--json',
      '--out',
      model,
    ]);
    const result = JSON.parse(stdout) as Record<string, unknown>;
    for (const key of [
      'hard_test_acc',
      'soft_test_acc',
      'samples_per_s',
      'epochs',
      'depth',
      'leaf',
      'backend',
      'routing_imbalance',
    ]) {
      assert.ok(key in result, `missing ${key}`);
    }
    assert.equal(result['backend'], 'wasm');
    assert.ok((result['hard_test_acc'] as number) > 0.5, `hard accuracy ${String(result['hard_test_acc'])}`);
    assert.ok((result['routing_imbalance'] as number) >= 1);
    const { metadata } = decodeSafetensors(readFileSync(model));
    assert.match(metadata[CHECKSUM_KEY] ?? '', /^[0-9a-f]{64}$/, 'the checkpoint carries its checksum');
    // No --data: the checkpoint says what it was trained on.
    const evaluated = JSON.parse((await arbor(['eval', '--model', model, '--json'])).stdout) as {
      hard_test_acc: number;
      n: number;
      data: string;
    };
    assert.equal(evaluated.data, 'mnist');
    assert.equal(evaluated.n, 2000);
    assert.equal(evaluated.hard_test_acc, result['hard_test_acc']);

    // Another dataset of the same shape only when asked, and said so.
    const other = await arbor(['eval', '--model', model, '--data', 'fashion-mnist', '--json']);
    assert.equal((JSON.parse(other.stdout) as { data: string; n: number }).n, 10_000);
    assert.match(other.stderr, /was trained on mnist; evaluating on fashion-mnist as asked/);
  });

  void it('eval refuses a checkpoint that does not say what it was trained on, unless told', async () => {
    const bare = join(dir, 'bare.safetensors');
    await writeFFF(
      bare,
      initWeights({ depth: 2, leafWidth: 2, inputWidth: 784, outputWidth: 10, activation: 'relu' }, 1),
    );
    await assert.rejects(arbor(['eval', '--model', bare]), (error: Error & { stderr: string }) => {
      assert.equal(
        error.stderr.trim(),
        `arbor: [CHECKPOINT_INVALID] ${bare}: does not record the data it was trained on (older checkpoints do not): pass --data`,
      );
      return true;
    });
    const told = JSON.parse((await arbor(['eval', '--model', bare, '--data', 'mnist', '--json'])).stdout) as {
      n: number;
    };
    assert.equal(told.n, 2000);
  });

  void it('eval of a truncated checkpoint fails with a message naming the file', async () => {
    const broken = join(dir, 'broken.safetensors');
    writeFileSync(broken, readFileSync(model).subarray(0, 100));
    await assert.rejects(
      arbor(['eval', '--model', broken, '--json']),
      (error: Error & { stderr: string; code: number }) => {
        assert.equal(error.code, 1);
        assert.match(error.stderr, /broken\.safetensors/);
        return true;
      },
    );
  });

  void it('rejects a bad flag value with a clear message', async () => {
    await assert.rejects(arbor(['train', '--depth', 'deep']), (error: Error & { stderr: string }) => {
      assert.match(error.stderr, /--depth must be an integer/);
      return true;
    });
  });

  void it('prints the join command for the address volunteers reach it at (--public-url)', async () => {
    const coordinator = spawnArbor([
      'coordinator',
      ...['--port', '0', '--db', join(dir, 'public.db'), '--pretrain-epochs', '1'],
      ...['--public-url', 'https://arbor.example.org/', '--token', 'secret'],
    ]);
    try {
      const line = await waitFor(
        'the join command',
        () => /^volunteers join with: (.*)$/m.exec(coordinator.stdout)?.[1],
      );
      assert.equal(
        line,
        `node -e "${joinScript('https://arbor.example.org')}" -- --url wss://arbor.example.org --token YOUR_TOKEN`,
      );
      assert.match(
        coordinator.stdout,
        /listening on http:\/\/127\.0\.0\.1:\d+ \(workers: arbor worker --url wss:\/\/arbor\.example\.org\)/,
      );
    } finally {
      coordinator.child.kill('SIGKILL');
    }
    await assert.rejects(
      arbor(['coordinator', '--public-url', 'arbor.example.org']),
      (error: Error & { stderr: string }) => {
        assert.match(
          error.stderr,
          /--public-url must look like https:\/\/HOST\[:PORT\], got "arbor\.example\.org"/,
        );
        return true;
      },
    );
  });

  void it('--help shows every job default from the job schema once, and --version the release', async () => {
    const { stdout } = await arbor(['coordinator', '--help']);
    const help = stdout.replace(/\s+/g, ' ');
    const config = parseJobConfig({});
    for (const [flag, value] of [
      ['--depth <D>', config.depth],
      ['--leaf <L>', config.leaf],
      ['--shard-epochs <n>', config.shard_epochs],
      ['--outer-lr <rate>', config.outer.lr],
      ['--lease-ms <ms>', config.lease_ms],
    ] as const)
      assert.match(help, new RegExp(`${flag} [^-]*\\(default: ${value}\\)`), flag);
    assert.doesNotMatch(help, /\(default: false\)/);
    assert.doesNotMatch(help, /\(default: [^)]*\) \(default:/, 'no default said twice');
    const bench = (await arbor(['bench', 'distributed', '--help'])).stdout.replace(/\s+/g, ' ');
    assert.match(bench, /--depth <D> tree depth D \(default: 6\)/);
    assert.match(bench, /--data <spec> .*\(default: fashion-mnist\)/);
    const version = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    assert.equal((await arbor(['--version'])).stdout.trim(), version.version);
  });

  void it('bench inference --json reports the dense baseline and the FFF on the same backend', async () => {
    const { stdout } = await arbor([
      'bench',
      'inference',
      '--depth',
      '6',
      '--leaf',
      '8',
      '--batch',
      '256',
      '--reps',
      '3',
      '--json',
    ]);
    const result = JSON.parse(stdout) as {
      width: number;
      fff_ms: number;
      ff_ms: number;
      speedup: number;
      backend: string;
    };
    assert.equal(result.width, 512);
    assert.equal(result.backend, 'wasm');
    assert.ok(result.fff_ms > 0 && result.ff_ms > 0);
    assert.ok(
      Math.abs(result.speedup / (result.ff_ms / result.fff_ms) - 1) < 0.05,
      'speedup is ff_ms / fff_ms',
    );
  });
});

void describe('arbor train --out', () => {
  void it('creates missing parent folders for the checkpoint', async () => {
    const nested = join(dir, 'runs', 'deeper', 'model.safetensors');
    await arbor(['train', '--data', 'mnist', '--depth', '2', '--epochs', '1', '--json', '--out', nested]);
    assert.ok(readFileSync(nested).length > 8);
  });
});

void describe('arbor demo', () => {
  void it('runs a coordinator and two worker processes to completion and prints both accuracies', async () => {
    const { stdout } = await arbor([
      'demo',
      '--depth',
      '3',
      '--frozen',
      '1',
      '--pretrain-epochs',
      '1',
      '--shard-epochs',
      '2',
      '--local-epochs',
      '1',
      '--dir',
      join(dir, 'demo'),
    ]);
    assert.match(stdout, /^dashboard: http:\/\/127\.0\.0\.1:\d+/m);
    const distributed = /^distributed: hard test accuracy ([\d.]+)% in \d+ s; model (\S+)$/m.exec(stdout);
    const central = /^central twin: hard test accuracy ([\d.]+)% in \d+ s$/m.exec(stdout);
    assert.ok(distributed && central, stdout);
    assert.ok(Number(distributed[1]) > 50, `distributed accuracy ${distributed[1]}%`);
    assert.ok(Number(central[1]) > 50, `central accuracy ${central[1]}%`);
    const evaluated = await arbor(['eval', '--model', distributed[2]!, '--json']);
    const { hard_test_acc } = JSON.parse(evaluated.stdout) as { hard_test_acc: number };
    assert.equal((hard_test_acc * 100).toFixed(2), distributed[1], 'the printed model is the one evaluated');
    assert.equal(distributed[2], join(dir, 'demo', 'arbor-final.safetensors'));
  });

  void it('leaves no temporary folder behind without --dir', async () => {
    const temp = mkdtempSync(join(dir, 'tmp-'));
    const args = ['demo', '--depth', '3', '--frozen', '1', '--pretrain-epochs', '1', '--shard-epochs', '1'];
    const { stdout } = await run(
      process.execPath,
      ['bin/arbor.js', ...args, '--local-epochs', '1', '--no-central'],
      {
        timeout: 120_000,
        env: { ...process.env, TMPDIR: temp },
      },
    );
    assert.match(
      stdout,
      /^distributed: hard test accuracy [\d.]+% in \d+ s; \(pass --dir DIR to keep the model and the database\)$/m,
    );
    // tsx keeps its compile cache there too; what Arbor made is named arbor-*.
    assert.deepEqual(
      readdirSync(temp).filter((name) => name.startsWith('arbor')),
      [],
    );
  });
});
