/**
 * Docker for real, CI's last step (`npm run test:docker`, outside `npm test`): the local base
 * from Debian's packages, both images, the embedded MNIST job as host processes, then the same
 * job under docker-compose with two workers and the coordinator container restarted once
 * mid-job. README.md's "Docker" commands are exactly COMMANDS. Skips, loudly, only where no
 * Docker engine can start.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Status } from '../proto/dashboard.ts';
import { ensureDockerd } from './helpers/dockerd.ts';
import { coordinatorUrl, spawnArbor } from './helpers/processes.ts';
import { shell } from './helpers/shell.ts';

const COMPOSE = 'docker-compose -p arbor -f docker/compose.yaml';
const COMMANDS = {
  base: 'docker/local-base.sh',
  stage: 'docker/stage.sh',
  build: `${COMPOSE} build --build-arg BASE=arbor-base:trixie`,
  up: `${COMPOSE} up -d --scale worker=2`,
  restart: `${COMPOSE} restart coordinator`,
  down: `${COMPOSE} down -v`,
};
/** The job flags of compose.yaml's coordinator, for the run without containers. */
const JOB = ['--data=mnist'];
/**
 * |accuracy in containers - accuracy on the host|. Units are cut to each volunteer's measured
 * speed, so how a shard's budget is split (and the result) follows timing: BENCHMARKS.md, "Docker".
 */
const TOLERANCE = 0.02;
const STATUS = 'http://127.0.0.1:7070/v1/status';
const MINUTE = 60_000;

const dir = mkdtempSync(join(tmpdir(), 'arbor-docker-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const engine = await ensureDockerd(join(dir, 'dockerd.log'));
if (typeof engine === 'string')
  process.stderr.write(`\n${'!'.repeat(72)}\n!!! DOCKER TEST SKIPPED: ${engine}\n${'!'.repeat(72)}\n\n`);

async function status(): Promise<Status | undefined> {
  try {
    const response = await fetch(STATUS, { signal: AbortSignal.timeout(3000) });
    return response.ok ? ((await response.json()) as Status) : undefined;
  } catch {
    return undefined;
  }
}

/** Polls the coordinator's status every 500 ms until `wanted` holds. */
async function statusWhen(what: string, wanted: (s: Status) => boolean, timeoutMs: number): Promise<Status> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const current = await status();
    if (current !== undefined && wanted(current)) return current;
    if (Date.now() > until)
      throw new Error(`timed out waiting for ${what}; last status ${JSON.stringify(current)}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

const inspect = async (format: string, ...names: string[]) =>
  (await shell(`docker inspect -f '${format}' ${names.join(' ')}`, MINUTE)).trim().split('\n');

void it("README.md's Docker section runs exactly these commands", () => {
  const readme = readFileSync('README.md', 'utf8');
  const section = /^## Docker\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1] ?? '';
  const lines = section.split('\n').map((line) => line.replace(/\s+#.*$/, '').trim());
  for (const command of Object.values(COMMANDS)) assert.ok(lines.includes(command), `README: ${command}`);
});

void describe('docker compose', { timeout: 30 * MINUTE, skip: typeof engine === 'string' && engine }, () => {
  after(async () => {
    await shell(COMMANDS.down, 2 * MINUTE).catch((error: Error) =>
      process.stderr.write(`${error.message}\n`),
    );
    if (typeof engine !== 'string') await engine.stop();
  });

  let hostAccuracy = NaN;
  let hostJob: Pick<Status, 'data' | 'model'> | undefined;

  void it('builds the local base and both images: non-root, healthchecked, the worker without server deps', async (t) => {
    await shell(COMMANDS.base, 15 * MINUTE);
    await shell(COMMANDS.stage, 10 * MINUTE);
    await shell(COMMANDS.build, 10 * MINUTE);
    const images = ['arbor-base:trixie', 'arbor-coordinator', 'arbor-worker'];
    const sizes = (await shell(`docker image inspect -f '{{.Size}}' ${images.join(' ')}`, MINUTE))
      .trim()
      .split('\n')
      .map(Number);
    t.diagnostic(images.map((image, i) => `${image} ${(sizes[i]! / 1e6).toFixed(0)} MB`).join(', '));
    assert.ok(sizes[2]! < sizes[1]!, 'the worker image is the smaller');
    for (const image of images.slice(1)) {
      const [user, healthcheck] = await inspect('{{.Config.User}}\n{{json .Config.Healthcheck.Test}}', image);
      assert.equal(user, 'arbor', image);
      assert.match(healthcheck!, /healthcheck\.mjs/, image);
    }
    const workerDeps = await shell(
      'docker run --rm --entrypoint ls arbor-worker /opt/arbor-worker/node_modules',
      MINUTE,
    );
    for (const server of ['fastify', 'better-sqlite3', 'prom-client', 'esbuild', 'tsx', 'mnist'])
      assert.ok(!workerDeps.split('\n').includes(server), `the worker image carries ${server}`);
  });

  void it('runs the same job without containers: a coordinator and two worker processes', async (t) => {
    const started = Date.now();
    const coordinator = spawnArbor([
      'coordinator',
      ...JOB,
      '--db',
      join(dir, 'host.db'),
      '--port',
      '0',
      '--exit-when-done',
      '--json',
    ]);
    const url = await coordinatorUrl(coordinator);
    const workers = [1, 2].map((n) =>
      spawnArbor(['worker', '--url', url.replace('http', 'ws'), '--name', `host-${n}`]),
    );
    const response = await fetch(`${url}/v1/status`);
    const { data, model } = (await response.json()) as Status;
    hostJob = { data, model };
    assert.equal(await coordinator.exited, 0, coordinator.stderr.slice(-2000));
    for (const worker of workers) assert.equal(await worker.exited, 0, worker.stderr.slice(-2000));
    hostAccuracy = (JSON.parse(coordinator.stdout.trim().split('\n').at(-1)!) as { hard_test_acc: number })
      .hard_test_acc;
    t.diagnostic(`host job: ${((Date.now() - started) / 1000).toFixed(0)} s, accuracy ${hostAccuracy}`);
  });

  void it('compose: two workers, the coordinator restarted mid-job resumes, same accuracy as on the host', async (t) => {
    await shell(COMMANDS.down, 2 * MINUTE);
    const started = Date.now();
    await shell(COMMANDS.up, 5 * MINUTE);
    const midJob = await statusWhen(
      'a first merged result',
      (s) => s.phase === 'training' && s.results.accepted >= 1,
      10 * MINUTE,
    );
    assert.deepEqual({ data: midJob.data, model: midJob.model }, hostJob, 'the same job as on the host');
    await shell(COMMANDS.restart, 2 * MINUTE);
    const resumed = await statusWhen('the restarted coordinator', () => true, 2 * MINUTE);
    assert.equal(resumed.phase, 'training', 'restarted mid-job');
    assert.ok(resumed.results.accepted >= midJob.results.accepted, 'no merged result lost');
    const logs = await shell(`${COMPOSE} logs --no-color coordinator`, MINUTE);
    assert.match(logs, /resuming the job stored in the database/);
    const done = await statusWhen('the job to finish', (s) => s.phase === 'done', 10 * MINUTE);
    const seconds = (Date.now() - started) / 1000;
    const accuracy = done.accuracy.hard_test_acc!;
    t.diagnostic(
      `compose job: ${seconds.toFixed(0)} s, accuracy ${accuracy} (host ${hostAccuracy}), ` +
        `merged ${midJob.results.accepted} before the restart, ${done.results.accepted} in all`,
    );
    assert.ok(done.results.accepted > resumed.results.accepted, 'training went on after the restart');
    assert.ok(
      Math.abs(accuracy - hostAccuracy) <= TOLERANCE,
      `accuracy ${accuracy} in containers, ${hostAccuracy} on the host`,
    );

    const workers = (await shell(`${COMPOSE} ps -q worker`, MINUTE)).trim().split('\n');
    assert.equal(workers.length, 2);
    const exits = (await shell(`docker wait ${workers.join(' ')}`, 2 * MINUTE)).trim().split('\n');
    assert.deepEqual(exits, ['0', '0'], 'the workers were told the job is done');
    const probes = await inspect('{{range .State.Health.Log}}{{.ExitCode}} {{end}}', ...workers);
    for (const log of probes) assert.match(log, /\b0\b/, 'each worker was healthy (connected) at some point');
    const [coordinator] = (await shell(`${COMPOSE} ps -q coordinator`, MINUTE)).trim().split('\n');
    const until = Date.now() + 2 * MINUTE;
    while ((await inspect('{{.State.Health.Status}}', coordinator!))[0] !== 'healthy') {
      assert.ok(Date.now() < until, 'the coordinator container turns healthy');
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  });
});
