/**
 * A volunteer joins with one command on a machine that has only Node.js: no npm, no
 * registry, nothing of this checkout. The command the dashboard shows fetches a join script
 * from the coordinator, which fetches the self-contained worker (a bundle and the wasm
 * backend's binaries, checked by SHA-256, kept for the next start) and runs it; the
 * volunteer trains a unit that is accepted. The same files come as an npm tarball with no
 * dependencies.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import { type Join, JoinSchema, joinCommand } from '../../proto/dashboard.ts';
import { sha256Hex } from '../../shared/content-hash.ts';
import { type SmallCoordinator, startSmallCoordinator } from '../helpers/small-job.ts';

const TOKEN = 'volunteer-secret';
const MB = 1e6;
const dir = mkdtempSync(joinPath(tmpdir(), 'arbor-join-'));
let small: SmallCoordinator;

before(async () => {
  small = await startSmallCoordinator({ token: TOKEN });
});
after(async () => {
  await small?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function getJoin(): Promise<Join> {
  const response = await fetch(`${small.coordinator.url}/v1/join`);
  assert.equal(response.status, 200);
  const body: unknown = await response.json();
  assert.ok(Value.Check(JoinSchema, body), JSON.stringify(body));
  return body;
}

/** Runs the join command as a volunteer's shell would, in an empty folder with an empty home. */
async function runJoinCommand(
  home: string,
  extra: readonly string[],
): Promise<{ code: number | null; stderr: string }> {
  const command = joinCommand(small.coordinator.url, await getJoin());
  assert.ok(command);
  const parsed = /^node -e "(.*)" -- (.*)$/.exec(command.replace('YOUR_TOKEN', TOKEN));
  assert.ok(parsed, command);
  const env: Record<string, string | undefined> = {
    ...process.env,
    HOME: home,
    // Nothing may come from a registry or from this checkout.
    npm_config_registry: 'http://127.0.0.1:9/',
    NODE_PATH: undefined,
    NODE_OPTIONS: undefined,
    ARBOR_HOME: undefined,
    ARBOR_LOG_FORMAT: 'json',
  };
  const child = spawn(process.execPath, ['-e', parsed[1]!, '--', ...parsed[2]!.split(' '), ...extra], {
    cwd: mkdtempSync(joinPath(dir, 'empty-')),
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.resume();
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  try {
    const [code] = (await once(child, 'exit')) as [number | null];
    return { code, stderr };
  } finally {
    process.removeListener('exit', reap);
  }
}

const fetchedMegabytes = (stderr: string): number | undefined => {
  const match = /worker \S+ fetched from \S+ \(([\d.]+) MB\)/.exec(stderr);
  return match ? Number(match[1]) : undefined;
};

void describe('the volunteer worker', { timeout: 300_000 }, () => {
  void it('joins with the command the dashboard shows, with Node alone, and keeps what it fetched', async () => {
    const home = mkdtempSync(joinPath(dir, 'home-'));
    const first = await runJoinCommand(home, ['--name', 'node-only-volunteer', '--max-units', '1']);
    assert.equal(first.code, 0, first.stderr.slice(-3000));
    const fetched = fetchedMegabytes(first.stderr);
    assert.ok(fetched !== undefined && fetched > 0.5 && fetched <= 10, `fetched ${fetched} MB`);
    assert.match(first.stderr, /"backend":"wasm"/, 'the bundled wasm backend trained');
    const { store } = small.coordinator;
    const volunteer = store.listWorkers().find((w) => w.name === 'node-only-volunteer');
    assert.ok(volunteer, 'the volunteer said hello');
    assert.equal(
      store.listResults().filter((r) => r.workerId === volunteer.id && r.status === 'accepted').length,
      1,
      first.stderr.slice(-2000),
    );

    // The next start fetches nothing; a damaged file is fetched again, never used; of the
    // workers other versions left, the two used last stay beside this one.
    const versions = joinPath(home, '.arbor/worker');
    const [kept] = readdirSync(versions);
    const wasm = joinPath(versions, kept!, 'tfjs-backend-wasm-simd.wasm');
    const older = ['1', '2', '3', '4'].map((digit, i) => {
      const path = joinPath(versions, digit.repeat(16));
      mkdirSync(path);
      const usedAt = new Date(Date.now() - (i + 1) * 86_400_000);
      utimesSync(path, usedAt, usedAt);
      return digit.repeat(16);
    });
    mkdirSync(joinPath(versions, 'not-a-version'));
    const again = await runJoinCommand(home, ['--help']);
    assert.deepEqual(
      readdirSync(versions).sort(),
      [kept!, older[0]!, older[1]!, 'not-a-version'].sort(),
      'the three versions used last, and nothing that is not a version',
    );
    assert.equal(again.code, 0, again.stderr);
    assert.equal(fetchedMegabytes(again.stderr), undefined, again.stderr);
    assert.match(again.stderr, /arbor: worker \S+ from /);
    const bytes = readFileSync(wasm);
    bytes[100] = bytes[100]! ^ 0xff;
    writeFileSync(wasm, bytes);
    const repaired = await runJoinCommand(home, ['--help']);
    assert.equal(repaired.code, 0, repaired.stderr);
    assert.ok((fetchedMegabytes(repaired.stderr) ?? 0) < 1, repaired.stderr);
    assert.notEqual(sha256Hex(readFileSync(wasm)), sha256Hex(bytes));
  });

  void it('says in one line why it cannot start when the coordinator is not there', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const command = joinCommand(`http://127.0.0.1:${port}`, await getJoin());
    const parsed = /^node -e "(.*)" -- (.*)$/.exec(command!);
    const result = spawnSync(process.execPath, ['-e', parsed![1]!, '--', ...parsed![2]!.split(' ')], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(result.status, 1);
    assert.equal(result.stderr.trim(), `arbor: connect ECONNREFUSED 127.0.0.1:${port}`);
  });

  void it('is also one immutable npm tarball with no dependencies, behind a stable redirect', async () => {
    const join = await getJoin();
    assert.equal(join.token_required, true);
    assert.ok(join.package_path, join.error ?? 'no package');
    const redirect = await fetch(`${small.coordinator.url}/v1/worker.tgz`, { redirect: 'manual' });
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.get('location'), join.package_path);
    const response = await fetch(`${small.coordinator.url}${join.package_path}`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('cache-control') ?? '', /immutable/);
    const bytes = new Uint8Array(await response.arrayBuffer());
    assert.equal(`/v1/worker/arbor-worker-${sha256Hex(bytes)}.tgz`, join.package_path, 'named by its hash');
    assert.ok(bytes.byteLength < 5 * MB, `${bytes.byteLength} bytes`);
    const unpacked = mkdtempSync(joinPath(dir, 'tarball-'));
    writeFileSync(joinPath(unpacked, 'worker.tgz'), bytes);
    assert.equal(spawnSync('tar', ['xzf', 'worker.tgz'], { cwd: unpacked }).status, 0);
    assert.deepEqual(readdirSync(joinPath(unpacked, 'package')).sort(), [
      'arbor-worker.mjs',
      'package.json',
      'tfjs-backend-wasm-simd.wasm',
      'tfjs-backend-wasm-threaded-simd.wasm',
      'tfjs-backend-wasm.wasm',
    ]);
    const manifest = JSON.parse(readFileSync(joinPath(unpacked, 'package/package.json'), 'utf8')) as {
      dependencies?: unknown;
    };
    assert.equal(manifest.dependencies, undefined, 'nothing to install');
    const help = spawnSync(process.execPath, ['package/arbor-worker.mjs', '--help'], {
      cwd: unpacked,
      encoding: 'utf8',
    });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /Usage: arbor-worker/);
    const other = await fetch(`${small.coordinator.url}/v1/worker/arbor-worker-${'0'.repeat(64)}.tgz`);
    assert.equal(other.status, 404);
  });
});
