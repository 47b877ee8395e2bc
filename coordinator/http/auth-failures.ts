/**
 * Failed authentications per address, counted before any token is looked at: an address
 * that fails `maxAuthFailuresPerIpPerMinute` times in a minute is refused outright for a
 * minute, twice as long at each further ban (at most an hour). A refusal costs one map
 * lookup; the map holds at most `MAX_ADDRESSES` entries, the stalest dropped first.
 */
import type { Clock } from '../../shared/clock.ts';

const MINUTE_MS = 60_000;
const MAX_BAN_MS = 60 * MINUTE_MS;
const MAX_ADDRESSES = 10_000;

interface AddressRecord {
  windowStartMs: number;
  failures: number;
  bannedUntilMs: number;
  bans: number;
}

export class AuthFailures {
  private readonly byIp = new Map<string, AddressRecord>();

  constructor(
    private readonly maxPerMinute: number,
    private readonly clock: Clock,
  ) {}

  /** Milliseconds the address must still wait before it may try again (0: it may). */
  bannedFor(ip: string): number {
    const record = this.byIp.get(ip);
    return record === undefined ? 0 : Math.max(0, record.bannedUntilMs - this.clock.now());
  }

  /** One more failed attempt from the address; bans it when that is one too many. */
  failed(ip: string): void {
    const now = this.clock.now();
    let record = this.byIp.get(ip);
    if (record === undefined) {
      if (this.byIp.size >= MAX_ADDRESSES) this.byIp.delete(this.byIp.keys().next().value!);
      record = { windowStartMs: now, failures: 0, bannedUntilMs: 0, bans: 0 };
    } else this.byIp.delete(ip);
    this.byIp.set(ip, record); // re-inserted: the map's order is the order of last failure
    if (now - record.windowStartMs >= MINUTE_MS) {
      record.windowStartMs = now;
      record.failures = 0;
      // A quiet hour since the last ban forgives the earlier ones.
      if (now - record.bannedUntilMs >= MAX_BAN_MS) record.bans = 0;
    }
    record.failures++;
    if (record.failures > this.maxPerMinute) {
      record.bannedUntilMs = now + Math.min(MAX_BAN_MS, MINUTE_MS * 2 ** record.bans);
      record.bans++;
      record.failures = 0;
      record.windowStartMs = now;
    }
  }

  /** The refusal's words: how long to wait, in whole seconds. */
  static reason(waitMs: number): string {
    return `too many failed authentications from this address: try again in ${Math.ceil(waitMs / 1000)} s`;
  }
}
