/**
 * The HTTP layer's quotas on their own, time from a hand-driven clock: the frame budget of a
 * worker socket, the upload slots and their deadline, the event stream places.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventStreamQuota } from '../../coordinator/http/event-stream-quota.ts';
import { FrameBudget, framesPerSecondFor } from '../../coordinator/http/frame-budget.ts';
import { DEFAULT_LIMITS } from '../../coordinator/http/limits.ts';
import { UploadSlots, uploadDeadlineMs } from '../../coordinator/http/upload-slots.ts';
import { ProtocolError } from '../../proto/errors.ts';
import { ManualClock } from '../../shared/clock.ts';

const rateLimited = (pattern: RegExp) => (error: unknown) =>
  error instanceof ProtocolError && error.code === 'RATE_LIMITED' && pattern.test(error.message);

void describe('the frame budget of a worker socket', () => {
  void it('lets a burst through, refuses the next frame, and refills at the sustained rate', () => {
    const clock = new ManualClock(0);
    const budget = new FrameBudget(10, 5, clock);
    for (let i = 0; i < 5; i++) assert.ok(budget.take(), `frame ${i} of the burst`);
    assert.equal(budget.take(), false, 'the burst is spent');
    clock.advance(99);
    assert.equal(budget.take(), false, 'not yet a whole frame back');
    clock.advance(1);
    assert.ok(budget.take(), 'one frame back after 100 ms at 10 a second');
    assert.equal(budget.take(), false);
    clock.advance(60_000);
    for (let i = 0; i < 5; i++) assert.ok(budget.take(), 'a quiet minute refills the burst, no more');
    assert.equal(budget.take(), false);
  });

  void it('never lets a clock that steps back spend frames it does not have', () => {
    const clock = new ManualClock(10_000);
    const budget = new FrameBudget(10, 1, clock);
    assert.ok(budget.take());
    clock.advance(-5_000);
    assert.equal(budget.take(), false);
    clock.advance(100);
    assert.ok(budget.take(), 'refills from the new reading on');
  });

  void it('allows the default rate, or four times what the job asks of an honest worker when that is more', () => {
    assert.equal(framesPerSecondFor(DEFAULT_LIMITS, 5_000, 2_000), DEFAULT_LIMITS.maxFramesPerSecond);
    assert.equal(framesPerSecondFor(DEFAULT_LIMITS, 50, 2_000), 4 * (20 + 0.5));
    assert.equal(framesPerSecondFor(DEFAULT_LIMITS, 5_000, 10), 4 * (0.2 + 100));
  });
});

void describe('upload slots', () => {
  const limits = {
    ...DEFAULT_LIMITS,
    maxConcurrentUploads: 3,
    maxUploadsPerIp: 2,
    maxUploadsPerVolunteer: 1,
  };

  void it('holds one upload per volunteer, a few per address, and frees each slot once', () => {
    const slots = new UploadSlots(limits);
    const first = slots.claim('10.0.0.1', 'w-alice');
    assert.throws(() => slots.claim('10.0.0.2', 'w-alice'), rateLimited(/this volunteer/));
    const bob = slots.claim('10.0.0.1', 'w-bob');
    assert.throws(() => slots.claim('10.0.0.1', 'w-carol'), rateLimited(/from this address/));
    const carol = slots.claim('10.0.0.2', 'w-carol');
    assert.throws(() => slots.claim('10.0.0.3', 'w-dave'), rateLimited(/3 uploads are being read/));
    first();
    first();
    assert.equal(slots.count, 2, 'a release called twice frees one slot');
    slots.claim('10.0.0.1', 'w-alice');
    bob();
    carol();
    assert.equal(slots.count, 1);
  });

  void it('gives an upload the floor, or its declared size at the minimum rate when that is longer', () => {
    const { uploadFloorMs, minUploadBytesPerSecond } = DEFAULT_LIMITS;
    assert.equal(uploadDeadlineMs(0, DEFAULT_LIMITS), uploadFloorMs);
    assert.equal(uploadDeadlineMs(100 * 1024, DEFAULT_LIMITS), uploadFloorMs);
    assert.equal(
      uploadDeadlineMs(4 * 1024 * 1024, DEFAULT_LIMITS),
      (4 * 1024 * 1024 * 1000) / minUploadBytesPerSecond,
    );
  });
});

void describe('event stream places', () => {
  const limits = {
    maxEventStreams: 3,
    maxEventStreamsPerIp: 2,
    maxEventStreamsPerToken: 1,
    adminEventStreams: 1,
  };
  const from = (ip: string, token?: string) => ({ ip, token, admin: false });

  void it('caps streams per address, per token and in all, and keeps a place for the admin token', () => {
    const quota = new EventStreamQuota(limits);
    const a = quota.claim(from('10.0.0.1', 'read'));
    assert.throws(() => quota.claim(from('10.0.0.2', 'read')), rateLimited(/use this token/));
    quota.claim(from('10.0.0.1'));
    assert.throws(() => quota.claim(from('10.0.0.1')), rateLimited(/from this address/));
    quota.claim(from('10.0.0.2'));
    assert.throws(() => quota.claim(from('10.0.0.3')), rateLimited(/3 event streams are open/));
    const admin = quota.claim({ ip: '10.0.0.1', token: 'admin', admin: true });
    assert.throws(
      () => quota.claim({ ip: '10.0.0.9', token: 'admin', admin: true }),
      rateLimited(/admin event streams/),
    );
    admin();
    quota.claim({ ip: '10.0.0.9', token: 'admin', admin: true });
    a();
    a();
    quota.claim(from('10.0.0.3', 'read'));
    assert.throws(() => quota.claim(from('10.0.0.4')), rateLimited(/3 event streams are open/));
  });
});
