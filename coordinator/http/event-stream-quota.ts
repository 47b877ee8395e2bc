/**
 * Who may open one more dashboard event stream: so many in all, per address and per token
 * presented, so that no one client holds them all; the admin token has places of its own
 * beyond every other cap, so the operator can always watch.
 */
import { ProtocolError } from '../../proto/errors.ts';
import { KeyedCounts, releaseOnce } from './keyed-counts.ts';
import type { ServerLimits } from './limits.ts';

export type EventStreamLimits = Pick<
  ServerLimits,
  'maxEventStreams' | 'maxEventStreamsPerIp' | 'maxEventStreamsPerToken' | 'adminEventStreams'
>;

export interface StreamOpener {
  readonly ip: string;
  /** The token the request presented, if any (the read token, say). */
  readonly token: string | undefined;
  /** The token presented is the admin token. */
  readonly admin: boolean;
}

export class EventStreamQuota {
  private others = 0;
  private admins = 0;
  private readonly perIp = new KeyedCounts();
  private readonly perToken = new KeyedCounts();

  constructor(private readonly limits: EventStreamLimits) {}

  /** A place for one more stream, or RATE_LIMITED; the returned release may be called more than once. */
  claim({ ip, token, admin }: StreamOpener): () => void {
    const { limits } = this;
    if (admin) {
      if (this.admins >= limits.adminEventStreams)
        throw new ProtocolError('RATE_LIMITED', `${this.admins} admin event streams are open; retry later`);
      this.admins++;
      return releaseOnce(() => this.admins--);
    }
    if (token !== undefined && this.perToken.get(token) >= limits.maxEventStreamsPerToken)
      throw new ProtocolError(
        'RATE_LIMITED',
        `${this.perToken.get(token)} event streams use this token; retry later`,
      );
    if (this.perIp.get(ip) >= limits.maxEventStreamsPerIp)
      throw new ProtocolError(
        'RATE_LIMITED',
        `${this.perIp.get(ip)} event streams are open from this address; retry later`,
      );
    if (this.others >= limits.maxEventStreams)
      throw new ProtocolError('RATE_LIMITED', `${this.others} event streams are open; retry later`);
    this.others++;
    this.perIp.add(ip);
    if (token !== undefined) this.perToken.add(token);
    return releaseOnce(() => {
      this.others--;
      this.perIp.remove(ip);
      if (token !== undefined) this.perToken.remove(token);
    });
  }
}
