/**
 * A volunteer joins with one command on a machine that has only Node.js: the coordinator
 * serves its own worker package, npx installs it (dependencies from the npm registry, into
 * an empty cache, from an empty folder) and the volunteer trains a unit that is accepted.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import { type Join, JoinSchema, joinCommand } from '../../proto/dashboard.ts';
import { sha256Hex } from '../../shared/content-hash.ts';
import { type SmallCoordinator, startSmallCoordinator } from '../helpers/small-job.ts';

const TOKEN = 'volunteer-secret';
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

/** The names of the files in an npm tarball (ustar, gzipped). */
function tarEntries(gz: Uint8Array): string[] {
  const tar = gunzipSync(gz);
  const names: string[] = [];
  for (let offset = 0; offset + 512 <= tar.length;) {
    const name = tar
      .subarray(offset, offset + 100)
      .toString('utf8')
      .replace(/\0.*$/s, '');
    if (name === '') break;
    const size = parseInt(
      tar
        .subarray(offset + 124, offset + 136)
        .toString('utf8')
        .trim() || '0',
      8,
    );
    names.push(name);
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return names.sort();
}

void describe('the volunteer package', { timeout: 300_000 }, () => {
  void it('is one immutable tarball of the worker alone, behind a stable redirect', async () => {
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
    assert.deepEqual(tarEntries(bytes), ['package/arbor-worker.mjs', 'package/package.json']);
    const other = await fetch(`${small.coordinator.url}/v1/worker/arbor-worker-${'0'.repeat(64)}.tgz`);
    assert.equal(other.status, 404);
  });

  void it('joins with the command the dashboard shows, from an empty folder', async () => {
    const join = await getJoin();
    const command = joinCommand(small.coordinator.url, join);
    assert.ok(command);
    const [program, ...args] = command.replace('YOUR_TOKEN', TOKEN).split(' ');
    assert.equal(program, 'npx');
    const empty = mkdtempSync(joinPath(dir, 'volunteer-'));
    const child = spawn(
      'npx',
      [...args, '--name', 'packaged-volunteer', '--max-units', '1', '--backend', 'wasm'],
      {
        cwd: empty,
        env: {
          ...process.env,
          // A cache of its own: nothing comes from this checkout's node_modules.
          npm_config_cache: joinPath(dir, 'npm-cache'),
          npm_config_update_notifier: 'false',
          npm_config_fund: 'false',
          npm_config_audit: 'false',
          ARBOR_LOG_FORMAT: 'json',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.resume();
    const reap = () => child.kill('SIGKILL');
    process.once('exit', reap);
    try {
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 0, stderr.slice(-3000));
    } finally {
      process.removeListener('exit', reap);
    }
    const { store } = small.coordinator;
    const volunteer = store.listWorkers().find((w) => w.name === 'packaged-volunteer');
    assert.ok(volunteer, 'the volunteer said hello');
    assert.equal(volunteer.unitsDone, 1, stderr.slice(-2000));
    assert.equal(
      store.listResults().filter((r) => r.workerId === volunteer.id && r.status === 'accepted').length,
      1,
    );
  });
});
