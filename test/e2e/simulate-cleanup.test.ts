/**
 * `arbor simulate` leaves nothing behind: its database and blobs (hundreds of MB on a real
 * job) are removed when it ends, also when the operator stops it with Ctrl-C mid-run.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { spawnArbor, waitFor } from '../helpers/processes.ts';

const dir = mkdtempSync(join(tmpdir(), 'arbor-simulate-cleanup-'));
after(() => rmSync(dir, { recursive: true, force: true }));

void describe('arbor simulate', { timeout: 180_000 }, () => {
  void it('removes what it wrote when stopped with Ctrl-C', async () => {
    const simulation = spawnArbor(
      [
        'simulate',
        ...['--data', 'mnist', '--depth', '3', '--frozen', '1', '--leaf', '4', '--pretrain-epochs', '1'],
        ...['--shard-epochs', '40', '--volunteers', '2'],
      ],
      { TMPDIR: dir },
    );
    const blobs = await waitFor(
      'the simulation to store blobs',
      () => {
        const [run] = readdirSync(dir).filter((name) => name.startsWith('arbor-simulate-'));
        const path = run === undefined ? undefined : join(dir, run, 'arbor.db.blobs');
        return path !== undefined && existsSync(path) && readdirSync(path).length > 3 ? path : undefined;
      },
      120_000,
    );
    simulation.child.kill('SIGINT');
    await simulation.exited;
    assert.ok(
      simulation.child.signalCode === 'SIGINT' || simulation.child.exitCode === 130,
      `ended with ${simulation.child.exitCode} ${simulation.child.signalCode}`,
    );
    assert.equal(existsSync(blobs), false);
    assert.deepEqual(
      readdirSync(dir).filter((name) => name.startsWith('arbor-')),
      [],
      simulation.stderr.slice(-1000),
    );
  });
});
