/**
 * Each merge strategy's arithmetic against a hand computation on uniform weights (every
 * entry the same, so one number stands for the whole model), and the outer state's bytes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type OuterState,
  decodeOuterState,
  emptyOuterState,
  encodeOuterState,
} from '../../coordinator/merge/outer-state.ts';
import { mergeStrategy } from '../../coordinator/merge/strategies.ts';
import type { MergeInput, OuterSettings } from '../../coordinator/merge/strategy.ts';
import { encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import { type FFFWeights, TENSOR_NAMES, zeroWeights } from '../../shared/fff/weights.ts';

const shape = { depth: 2, leafWidth: 3, inputWidth: 4, outputWidth: 2, activation: 'relu' as const };
const filled = (value: number): FFFWeights => {
  const w = zeroWeights(shape);
  for (const name of TENSOR_NAMES) w.tensors[name].fill(value);
  return w;
};
/** The one value uniform weights hold (checked uniform). */
const valueOf = (w: FFFWeights): number => {
  const first = w.tensors['nodes.weight'][0]!;
  for (const name of TENSOR_NAMES) for (const v of w.tensors[name]) assert.ok(Math.abs(v - first) < 1e-6);
  return first;
};
const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-6, `${what}: ${actual}, expected ${expected}`);

const settings = (over: Partial<OuterSettings>): OuterSettings => ({
  strategy: 'sum',
  lr: 1,
  round: 4,
  momentum: 0,
  staleness_discount: 1,
  stale_correction: 'none',
  ...over,
});

/** Feeds `deltas` (uniform values) one after another, as results of units cut among `peers`. */
function run(over: Partial<OuterSettings>, deltas: readonly number[], peers: number, start = 1) {
  const strategy = mergeStrategy(settings(over));
  let current = filled(start);
  let state: OuterState = emptyOuterState(shape);
  const trace: { weights: number; judged: number; step: boolean }[] = [];
  for (const value of deltas) {
    const input: MergeInput = { current, state, delta: filled(value), staleness: 0, peers, trained: 1 };
    const proposal = strategy.propose(input);
    current = proposal.weights;
    state = proposal.state;
    trace.push({ weights: valueOf(current), judged: valueOf(proposal.judged), step: proposal.outerStep });
  }
  return { trace, state };
}

void describe('merge strategies', () => {
  void it('sum applies every delta whole at the outer rate: the rule before strategies existed', () => {
    const { trace } = run({ strategy: 'sum', lr: 0.5 }, [0.2, 0.4], 4);
    assert.deepEqual(
      trace.map((t) => Number(t.weights.toFixed(6))),
      [1.1, 1.3],
    );
    assert.equal(mergeStrategy(settings({ strategy: 'sum' })).share(8), 1, 'each result a full step');
  });

  void it('sum takes from a stale delta what its shard already moved its way', () => {
    const strategy = mergeStrategy(settings({ strategy: 'sum', stale_correction: 'project' }));
    const proposal = strategy.propose({
      current: filled(1.3),
      state: emptyOuterState(shape),
      delta: filled(0.5),
      moved: filled(0.3),
      staleness: 1,
      peers: 1,
      trained: 1,
    });
    close(valueOf(proposal.weights), 1.3 + 0.2, 'the covered 0.3 is dropped');
  });

  void it('delayed Nesterov: lr·Δ/N per arrival, the momentum once per N arrivals with their mean', () => {
    // N = 2, lr 0.5, β 0.9. Arrival 1: θ = 1 + 0.5·0.2/2 = 1.05. Arrival 2: θ = 1.05 + 0.5·0.4/2 = 1.15,
    // the round is complete: mean 0.3, m = 0.3, θ += 0.5·0.9·0.3 = 0.135 -> 1.285.
    // Arrivals 3 and 4 (0.1, 0.1): θ = 1.31, then 1.335; mean 0.1, m = 0.9·0.3 + 0.1 = 0.37,
    // θ += 0.5·0.9·0.37 = 0.1665 -> 1.5015.
    const { trace, state } = run(
      { strategy: 'delayed-nesterov', lr: 0.5, momentum: 0.9 },
      [0.2, 0.4, 0.1, 0.1],
      2,
    );
    const expected = [1.05, 1.285, 1.31, 1.5015];
    trace.forEach((t, i) => close(t.weights, expected[i]!, `after arrival ${i + 1}`));
    assert.deepEqual(
      trace.map((t) => t.step),
      [false, true, false, true],
    );
    close(valueOf(state.momentum), 0.37, 'momentum');
    close(trace[0]!.judged, 1 + 0.5 * 0.2, 'judged: the delta alone at the outer rate');
    assert.equal(mergeStrategy(settings({ strategy: 'delayed-nesterov' })).share(4), 1 / 4);
    const sooner = mergeStrategy(settings({ strategy: 'delayed-nesterov', round: 2 }));
    assert.deepEqual(
      [1, 2, 4, 8].map((n) => sooner.share(n)),
      [1, 1 / 2, 1 / 2, 1 / 2],
      'a round of at most W: beyond it, volunteers move the schedule faster',
    );
  });

  void it('delayed Nesterov with one unit in flight is outer Nesterov on every delta', () => {
    // θ = 1 + 0.7·0.2 = 1.14; m = 0.2; θ += 0.7·0.9·0.2 = 0.126 -> 1.266.
    const { trace } = run({ strategy: 'delayed-nesterov', lr: 0.7, momentum: 0.9 }, [0.2], 1);
    close(trace[0]!.weights, 1.266, 'one Nesterov step');
  });

  void it('delayed Nesterov without momentum merges N concurrent deltas into their mean, not their sum', () => {
    const { trace } = run({ strategy: 'delayed-nesterov' }, Array(8).fill(0.1), 8);
    close(trace.at(-1)!.weights, 1.1, 'eight deltas of 0.1 from one base move the shard by 0.1');
    const summed = run({ strategy: 'sum' }, Array(8).fill(0.1), 8);
    close(summed.trace.at(-1)!.weights, 1.8, 'summed, they would move it by 0.8');
  });

  void it('fedbuff holds the weights until a round is buffered, then steps with the staleness-weighted mean', () => {
    const strategy = mergeStrategy(settings({ strategy: 'fedbuff', lr: 1, momentum: 0.5 }));
    const first = strategy.propose({
      current: filled(1),
      state: emptyOuterState(shape),
      delta: filled(0.3),
      staleness: 3, // weight 1/√4 = 0.5
      peers: 2,
      trained: 1,
    });
    close(valueOf(first.weights), 1, 'nothing moves while buffering');
    close(valueOf(first.judged), 1.3, 'the delta is judged on its own');
    assert.equal(first.outerStep, false);
    const second = strategy.propose({
      current: first.weights,
      state: first.state,
      delta: filled(0.2),
      staleness: 0, // weight 1
      peers: 2,
      trained: 1,
    });
    // mean = (0.5·0.3 + 1·0.2) / 2 = 0.175; m = 0.175; θ = 1 + 0.175 + 0.5·0.175 = 1.2625.
    close(valueOf(second.weights), 1.2625, 'one Nesterov step with the buffered mean');
    assert.equal(second.outerStep, true);
  });

  void it('a partial result counts for what it trained towards its round', () => {
    const strategy = mergeStrategy(settings({ strategy: 'delayed-nesterov', momentum: 0.5 }));
    const half = strategy.propose({
      current: filled(1),
      state: emptyOuterState(shape),
      delta: filled(0.1),
      staleness: 0,
      peers: 1,
      trained: 0.5,
    });
    assert.equal(half.outerStep, false, 'half a unit is half a round');
    close(half.state.round, 0.5, 'round');
  });
});

void describe('outer state', () => {
  void it('round-trips through its blob', () => {
    const state: OuterState = { momentum: filled(0.25), pending: filled(-0.5), round: 0.75, arrivals: 3 };
    const decoded = decodeOuterState(encodeOuterState(state), shape, 'test');
    assert.deepEqual(decoded, state);
  });

  void it("reads a job's momentum blob from before strategies as momentum with nothing pending", () => {
    const decoded = decodeOuterState(encodeFFF(filled(0.5)), shape, 'legacy');
    close(valueOf(decoded.momentum), 0.5, 'momentum');
    assert.equal(decoded.round, 0);
    close(valueOf(decoded.pending), 0, 'pending');
  });

  void it('refuses a blob of another shape with a clear error', () => {
    const bytes = encodeOuterState(emptyOuterState({ ...shape, depth: 3 }));
    assert.throws(
      () => decodeOuterState(bytes, shape, 'blob x'),
      /blob x: momentum\/nodes\.weight is missing or of another size/,
    );
  });
});
