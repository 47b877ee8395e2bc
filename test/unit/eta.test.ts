import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { etaSeconds } from '../../coordinator/read/eta.ts';

void describe('time left', () => {
  void it('is the rest of the budget at the rate of the recent window', () => {
    // 2,000 samples accepted over the 10 s since the window's first result: 200 samples/s.
    assert.equal(etaSeconds({ results: 4, samples: 2_000, firstMs: 0 }, 6_000, 10_000), 30);
  });

  void it('is unknown with fewer than two recent results, and zero once nothing is left', () => {
    assert.equal(etaSeconds({ results: 0, samples: 0, firstMs: null }, 6_000, 10_000), null);
    assert.equal(etaSeconds({ results: 1, samples: 500, firstMs: 9_000 }, 6_000, 10_000), null);
    assert.equal(etaSeconds({ results: 0, samples: 0, firstMs: null }, 0, 10_000), 0);
  });
});
