import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deltaNorm, nonFiniteValue, shapeMismatch } from '../../coordinator/core/delta-check.ts';
import { OuterOptimizer } from '../../coordinator/merge/outer-optimizer.ts';
import { withoutCoveredPart } from '../../coordinator/merge/stale-correction.ts';
import { initWeights } from '../../shared/fff/init.ts';
import { type FFFWeights, TENSOR_NAMES, cloneWeights, zeroWeights } from '../../shared/fff/weights.ts';

const shape = { depth: 2, leafWidth: 3, inputWidth: 4, outputWidth: 2, activation: 'relu' as const };
const filled = (value: number): FFFWeights => {
  const w = zeroWeights(shape);
  for (const name of TENSOR_NAMES) w.tensors[name].fill(value);
  return w;
};

void describe('delta checks', () => {
  void it('pass a finite delta of the right shape and measure its norm', () => {
    assert.equal(shapeMismatch(filled(0.5), shape), undefined);
    assert.equal(nonFiniteValue(filled(0.5)), undefined);
    const count = TENSOR_NAMES.reduce((s, n) => s + filled(0).tensors[n].length, 0);
    assert.ok(Math.abs(deltaNorm(filled(0.5)) - 0.5 * Math.sqrt(count)) < 1e-9);
  });

  void it('find NaN and infinities, naming the tensor and index', () => {
    const delta = filled(0);
    delta.tensors['leaves.b1'][2] = Number.NaN;
    assert.match(nonFiniteValue(delta) ?? '', /leaves\.b1\[2\] is not finite/);
    delta.tensors['leaves.b1'][2] = Number.POSITIVE_INFINITY;
    assert.match(nonFiniteValue(delta) ?? '', /leaves\.b1\[2\] is not finite \(Infinity\)/);
  });

  void it('find a delta of another shape, or with a tensor of the wrong length', () => {
    assert.match(shapeMismatch(zeroWeights({ ...shape, depth: 3 }), shape) ?? '', /does not match the shard/);
    const short = filled(0);
    short.tensors['nodes.bias'] = new Float32Array(1);
    assert.match(shapeMismatch(short, shape) ?? '', /nodes\.bias has 1 values/);
  });
});

void describe('outer optimizer (Nesterov over buffered deltas)', () => {
  const base = initWeights(shape, 3);

  void it('with lr 1 and no momentum applies the mean delta exactly', () => {
    const optimizer = new OuterOptimizer({ lr: 1, momentum: 0, stalenessDiscount: 1 }, base);
    const next = optimizer.step(base, [
      { delta: filled(0.2), staleness: 0 },
      { delta: filled(0.4), staleness: 3 },
    ]);
    for (const name of TENSOR_NAMES) {
      next.tensors[name].forEach((v, i) => assert.ok(Math.abs(v - (base.tensors[name][i]! + 0.3)) < 1e-6));
    }
  });

  void it('discounts stale deltas and leaves the input untouched', () => {
    const before = cloneWeights(base);
    const optimizer = new OuterOptimizer({ lr: 1, momentum: 0, stalenessDiscount: 0.5 }, base);
    const next = optimizer.step(base, [{ delta: filled(1), staleness: 2 }]);
    assert.ok(Math.abs(next.tensors['nodes.bias'][0]! - (base.tensors['nodes.bias'][0]! + 0.25)) < 1e-6);
    assert.deepEqual(base.tensors['nodes.bias'], before.tensors['nodes.bias']);
  });

  void it('accumulates Nesterov momentum across steps', () => {
    const optimizer = new OuterOptimizer({ lr: 0.5, momentum: 0.9, stalenessDiscount: 1 }, base);
    const first = optimizer.step(base, [{ delta: filled(1), staleness: 0 }]);
    // m = 1, update = 0.5 * (0.9 * 1 + 1) = 0.95
    assert.ok(Math.abs(first.tensors['leaves.b2'][0]! - base.tensors['leaves.b2'][0]! - 0.95) < 1e-6);
    const second = optimizer.step(first, [{ delta: filled(1), staleness: 0 }]);
    // m = 1.9, update = 0.5 * (0.9 * 1.9 + 1) = 1.355
    assert.ok(Math.abs(second.tensors['leaves.b2'][0]! - first.tensors['leaves.b2'][0]! - 1.355) < 1e-5);
  });

  void it('an empty buffer changes nothing', () => {
    const optimizer = new OuterOptimizer({ lr: 0.7, momentum: 0.9, stalenessDiscount: 0.5 }, base);
    assert.deepEqual(optimizer.step(base, []).tensors, base.tensors);
  });
});

void describe('stale correction (project)', () => {
  const shape = { depth: 2, leafWidth: 3, inputWidth: 4, outputWidth: 2, activation: 'relu' } as const;
  const moved = initWeights(shape, 3);
  const times = (w: FFFWeights, k: number): FFFWeights => {
    const out = cloneWeights(w);
    for (const name of TENSOR_NAMES) out.tensors[name].forEach((v, i, a) => (a[i] = v * k));
    return out;
  };
  const close = (a: FFFWeights, b: FFFWeights) => {
    for (const name of TENSOR_NAMES)
      a.tensors[name].forEach((v, i) => assert.ok(Math.abs(v - b.tensors[name][i]!) < 1e-5, name));
  };

  void it('leaves a fresh delta alone, and removes what the shard already moved its way', () => {
    const delta = initWeights(shape, 4);
    close(withoutCoveredPart(delta, zeroWeights(shape)), delta);
    close(withoutCoveredPart(times(moved, 0.5), moved), zeroWeights(shape));
    close(withoutCoveredPart(times(moved, 2), moved), moved);
    close(withoutCoveredPart(times(moved, -1), moved), times(moved, -1));
  });

  void it('keeps the part of a delta the shard has not moved along', () => {
    const delta = initWeights(shape, 5);
    const corrected = withoutCoveredPart(delta, moved);
    for (const name of TENSOR_NAMES) {
      let dot = 0;
      corrected.tensors[name].forEach((v, i) => (dot += v * moved.tensors[name][i]!));
      let before = 0;
      delta.tensors[name].forEach((v, i) => (before += v * moved.tensors[name][i]!));
      assert.ok(before <= 0 ? Math.abs(dot - before) < 1e-4 : Math.abs(dot) < 1e-4, name);
    }
  });
});
