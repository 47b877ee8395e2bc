import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TARGET_STEPS, autoBatchSize, buildRecipe } from '../../shared/fff/recipe.ts';

void describe('default recipe', () => {
  void it('splits 30 epochs into 10 soft, 12 hardening, 8 hard-routed leaf epochs', () => {
    const recipe = buildRecipe({
      epochs: 30,
      batchSize: 256,
      lr: 1e-3,
      optimizer: 'adam',
      hardening: 3,
      leak: 0,
      balance: 0,
      frozenLevels: 0,
      seed: 1,
    });
    assert.deepEqual(
      recipe.phases.map((p) => [p.name, p.epochs, p.hardening, p.routing, p.train]),
      [
        ['soft', 10, 0, 'soft', 'all'],
        ['harden', 12, 3, 'soft', 'all'],
        ['hard-leaves', 8, 0, 'hard', 'leaves'],
      ],
    );
    assert.ok(Math.abs(recipe.phases[2]!.lr - 3e-4) < 1e-12);
  });

  void it('picks 256 for Fashion-MNIST and 32 for the embedded MNIST, keeping ~TARGET_STEPS steps', () => {
    assert.equal(autoBatchSize(60_000, 30), 256);
    assert.equal(autoBatchSize(8_000, 30), 32);
    assert.equal(autoBatchSize(100, 1), 32);
    for (const [n, epochs] of [
      [60_000, 30],
      [20_000, 30],
    ] as const) {
      const batch = autoBatchSize(n, epochs);
      assert.ok((n * epochs) / batch >= TARGET_STEPS, `batch ${batch} gives too few steps`);
    }
  });
});

void describe('schedule windows', () => {
  const options = {
    epochs: 12,
    batchSize: 32,
    lr: 1e-3,
    optimizer: 'adam' as const,
    hardening: 3,
    leak: 0,
    balance: 0,
    frozenLevels: 0,
    seed: 1,
  };

  void it('four windows of a 12-epoch schedule are its phases, cut where the windows cut them', () => {
    const windows = [0, 1, 2, 3].map((i) => buildRecipe(options, { from: i / 4, to: (i + 1) / 4 }));
    assert.deepEqual(
      windows.map((w) => w.phases.map((p) => [p.name, +p.epochs.toFixed(6)])),
      [
        [['soft', 3]],
        [
          ['soft', 1],
          ['harden', 2],
        ],
        [['harden', 3]],
        [['hard-leaves', 3]],
      ],
    );
    for (const w of windows)
      assert.equal(
        w.phases.reduce((sum, p) => sum + p.epochs, 0),
        3,
      );
    assert.deepEqual(windows[3]!.phases[0]!.lrWindow, { from: 0, to: 1 });
  });

  void it('a decaying rate continues across windows where the last one stopped', () => {
    const first = buildRecipe(options, { from: 0.75, to: 0.875 }).phases.at(-1)!;
    const second = buildRecipe(options, { from: 0.875, to: 1 }).phases[0]!;
    assert.equal(first.name, 'hard-leaves');
    assert.equal(first.lrWindow!.to, second.lrWindow!.from);
    assert.deepEqual(buildRecipe(options).phases, buildRecipe(options, { from: 0, to: 1 }).phases);
  });
});
