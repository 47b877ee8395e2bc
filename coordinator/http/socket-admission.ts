/**
 * Who may open one more worker socket: at most so many at once per address and per
 * volunteer token, and so many new ones per address each minute (reconnect storms, name spam).
 */
import type { WebSocket } from 'ws';
import { KeyedCounts } from './keyed-counts.ts';
import type { ServerLimits } from './limits.ts';

type AdmissionLimits = Pick<
  ServerLimits,
  'maxConnectionsPerIp' | 'maxSocketsPerToken' | 'maxConnectsPerIpPerMinute'
>;

/** Counts per key that go down when a socket closes. */
class OpenCounts extends KeyedCounts {
  track(key: string, ws: WebSocket): void {
    this.add(key);
    ws.once('close', () => this.remove(key));
  }
}

export class SocketAdmission {
  private readonly perIp = new OpenCounts();
  private readonly perToken = new OpenCounts();
  // Upgrades per address in the current minute; the map is cleared as each minute starts.
  private readonly recent = new Map<string, number>();
  private minuteStarted = Date.now();

  constructor(private readonly limits: AdmissionLimits) {}

  /** Why this upgrade is refused, or undefined when it may proceed (it then counts as a connect). */
  refusal(ip: string, tokenId: string | undefined): string | undefined {
    if (tokenId !== undefined && this.perToken.get(tokenId) >= this.limits.maxSocketsPerToken)
      return 'too many sockets for one volunteer token';
    if (this.perIp.get(ip) >= this.limits.maxConnectionsPerIp) return 'too many sockets from this address';
    const now = Date.now();
    if (now - this.minuteStarted >= 60_000) {
      this.recent.clear();
      this.minuteStarted = now;
    }
    const count = (this.recent.get(ip) ?? 0) + 1;
    this.recent.set(ip, count);
    return count > this.limits.maxConnectsPerIpPerMinute
      ? 'too many new sockets from this address'
      : undefined;
  }

  opened(ws: WebSocket, ip: string, tokenId: string | undefined): void {
    this.perIp.track(ip, ws);
    if (tokenId !== undefined) this.perToken.track(tokenId, ws);
  }
}
