/**
 * A unit's lineage (origin, part, retry) is what a unit is; its id is written from it and
 * never read back, so ids that look alike cannot be mistaken for each other.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nextRetry } from '../../coordinator/core/retries.ts';
import { restOfUnit } from '../../coordinator/core/unit-cutter.ts';
import {
  backupLineage,
  cutLineage,
  named,
  partLineage,
  unitId,
} from '../../coordinator/core/unit-lineage.ts';
import type { Unit } from '../../coordinator/store/store.ts';

const unit = (over: Partial<Unit>): Unit => ({
  id: 'u',
  origin: 'u',
  part: null,
  retry: 0,
  shard: 3,
  baseVersion: 0,
  createdMs: 0,
  state: 'leased',
  workerId: 'w',
  leaseToken: 't',
  deadlineMs: null,
  attempts: 1,
  baseBlob: null,
  heldBy: null,
  heldBlob: null,
  window: { from: 0.5, to: 0.75, epochs: 3 },
  baseTop: null,
  baseSamples: null,
  leasedMs: null,
  ...over,
});

void describe('unit lineage', () => {
  void it('names the cut by shard and start, a part by where it starts, a retry by its count', () => {
    const cut = cutLineage(3, 0.5);
    assert.deepEqual(named(cut), { id: 's0003-c500000', origin: 's0003-c500000', part: null, retry: 0 });
    assert.equal(unitId({ ...cut, part: 625000, retry: 2 }), 's0003-c500000-p625000-x2');
  });

  void it("a retry keeps the unit's origin and part and counts from the unit's own retry field", () => {
    // An origin that itself ends like a retry: parsing the id would have counted from 7.
    const part = unit({ id: 'odd-x7-p625000-x1', origin: 'odd-x7', part: 625000, retry: 1 });
    const retry = nextRetry(part, 'owner', 5)!;
    assert.deepEqual(
      { id: retry.id, origin: retry.origin, part: retry.part, retry: retry.retry },
      { id: 'odd-x7-p625000-x2', origin: 'odd-x7', part: 625000, retry: 2 },
    );
    assert.equal(
      nextRetry({ ...part, retry: 15 }, 'owner', 5),
      undefined,
      'retired after 3 × max_retries reissues',
    );
  });

  void it('the rest of a retried part is a new part of the same origin, its retries starting again', () => {
    const retried = unit({ id: 's0003-c500000-p600000-x2', origin: 's0003-c500000', part: 600000, retry: 2 });
    const rest = restOfUnit(retried, retried.window!, 0.5);
    assert.deepEqual(
      { id: rest.id, origin: rest.origin, part: rest.part, retry: rest.retry },
      { id: 's0003-c500000-p625000', origin: 's0003-c500000', part: 625000, retry: 0 },
    );
    assert.deepEqual(partLineage(retried, 0.625), { origin: 's0003-c500000', part: 625000, retry: 0 });
  });

  void it("a backup copy is an origin of its own, so its parts never take the unit's ids", () => {
    const original = unit({ id: 's0001-c000000', origin: 's0001-c000000', attempts: 2 });
    const copy = backupLineage(original);
    assert.deepEqual(copy, { origin: 's0001-c000000-b2', part: null, retry: 0 });
    const copyUnit = unit({ ...named(copy) });
    assert.notEqual(
      restOfUnit(copyUnit, copyUnit.window!, 0.5).id,
      restOfUnit(original, original.window!, 0.5).id,
    );
  });
});
