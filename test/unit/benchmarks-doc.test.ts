import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { benchCommand } from '../../cli/bench-command.ts';

void describe('BENCHMARKS.md', () => {
  void it('has a section with the command of every benchmark `arbor bench` runs', () => {
    const doc = readFileSync(new URL('../../BENCHMARKS.md', import.meta.url), 'utf8');
    const missing = benchCommand()
      .commands.map((command) => command.name())
      .filter((name) => !new RegExp(`arbor bench ${name}\\b`).test(doc));
    assert.deepEqual(missing, [], 'measure these and record them, with their command');
  });
});
