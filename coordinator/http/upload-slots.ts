/**
 * Who may have a result upload read now. Slots are few (each upload's body is held in
 * memory while it arrives), so besides the global cap an address and a volunteer may hold
 * only a few of them, and each upload must arrive within a time that grows with its declared
 * size: uploads that trickle in can no longer hold every slot while the crowd is told to wait.
 */
import { ProtocolError } from '../../proto/errors.ts';
import { KeyedCounts, releaseOnce } from './keyed-counts.ts';
import type { ServerLimits } from './limits.ts';

export type UploadLimits = Pick<
  ServerLimits,
  | 'maxConcurrentUploads'
  | 'maxUploadsPerIp'
  | 'maxUploadsPerVolunteer'
  | 'uploadFloorMs'
  | 'minUploadBytesPerSecond'
>;

/** How long an upload of `declaredBytes` may take to arrive. */
export const uploadDeadlineMs = (declaredBytes: number, limits: UploadLimits): number =>
  Math.max(limits.uploadFloorMs, Math.ceil((declaredBytes / limits.minUploadBytesPerSecond) * 1000));

export class UploadSlots {
  private inFlight = 0;
  private readonly perIp = new KeyedCounts();
  private readonly perVolunteer = new KeyedCounts();

  constructor(private readonly limits: UploadLimits) {}

  get count(): number {
    return this.inFlight;
  }

  /**
   * A slot for an upload from `ip` by `volunteer` (one key for all of a volunteer's
   * connections), or RATE_LIMITED; the returned release may be called more than once.
   */
  claim(ip: string, volunteer: string): () => void {
    const { limits } = this;
    if (this.perVolunteer.get(volunteer) >= limits.maxUploadsPerVolunteer)
      throw new ProtocolError(
        'RATE_LIMITED',
        `this volunteer already has ${this.perVolunteer.get(volunteer)} upload(s) being read; retry when it is done`,
      );
    if (this.perIp.get(ip) >= limits.maxUploadsPerIp)
      throw new ProtocolError(
        'RATE_LIMITED',
        `${this.perIp.get(ip)} uploads from this address are being read; retry shortly`,
      );
    if (this.inFlight >= limits.maxConcurrentUploads)
      throw new ProtocolError('RATE_LIMITED', `${this.inFlight} uploads are being read; retry shortly`);
    this.inFlight++;
    this.perIp.add(ip);
    this.perVolunteer.add(volunteer);
    return releaseOnce(() => {
      this.inFlight--;
      this.perIp.remove(ip);
      this.perVolunteer.remove(volunteer);
    });
  }
}
