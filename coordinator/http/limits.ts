/** What the coordinator's sockets and routes allow a stranger, with the defaults it ships with. */
export interface ServerLimits {
  /** Result uploads read at once; more are answered RATE_LIMITED. */
  readonly maxConcurrentUploads: number;
  /** Result uploads read at once from one address (well under the global cap); then RATE_LIMITED. */
  readonly maxUploadsPerIp: number;
  /** Result uploads read at once for one volunteer (all of a token's worker ids); then RATE_LIMITED. */
  readonly maxUploadsPerVolunteer: number;
  /** Every upload may take this long to arrive, however small. */
  readonly uploadFloorMs: number;
  /**
   * The slowest transfer tolerated: an upload of N declared bytes that has not arrived within
   * max(uploadFloorMs, N / this) is answered RATE_LIMITED and its connection closed.
   */
  readonly minUploadBytesPerSecond: number;
  /** A worker socket that has not said hello by then is closed. */
  readonly helloTimeoutMs: number;
  /**
   * A worker socket that sent no frame for this long is closed (honest workers speak at
   * least every heartbeat or no_work retry, both far shorter); checked at each ping.
   */
  readonly idleTimeoutMs: number;
  /** Sockets are pinged this often; one that has not answered the last ping is dropped. */
  readonly pingIntervalMs: number;
  /**
   * Frames a worker socket may send per second, sustained (a token bucket; raised to four
   * times what the job's own heartbeat and retry hints ask of an honest worker when that is
   * more); a socket over it is sent RATE_LIMITED and closed, its further frames unread.
   */
  readonly maxFramesPerSecond: number;
  /** Frames a worker socket may send at once above the sustained rate (the bucket's size). */
  readonly frameBurst: number;
  /** Worker sockets from one address at once; more upgrades are refused with 429. */
  readonly maxConnectionsPerIp: number;
  /** Worker sockets of one volunteer token at once (its machines); more upgrades get 429. */
  readonly maxSocketsPerToken: number;
  /** New worker sockets from one address per minute (reconnect storms, name spam); then 429. */
  readonly maxConnectsPerIpPerMinute: number;
  /** Dashboard event streams open at once (the admin token's aside); more are answered RATE_LIMITED. */
  readonly maxEventStreams: number;
  /** Dashboard event streams from one address at once; then RATE_LIMITED. */
  readonly maxEventStreamsPerIp: number;
  /** Dashboard event streams opened with one token (the read token's, say) at once; then RATE_LIMITED. */
  readonly maxEventStreamsPerToken: number;
  /** Event streams kept for the admin token beyond every other cap, so the operator is never locked out. */
  readonly adminEventStreams: number;
  /** A request (headers and body) not received in full by then is answered 408 and closed. */
  readonly requestTimeoutMs: number;
  /**
   * Failed authentications (401) from one address per minute; one more and the address is
   * refused with 429 for a minute, doubling with each further ban up to an hour.
   */
  readonly maxAuthFailuresPerIpPerMinute: number;
  /** Open enrolment: volunteer tokens issued to one address per hour. */
  readonly maxEnrolmentsPerIpPerHour: number;
  /** Open enrolment: volunteer tokens issued per hour in all. */
  readonly maxEnrolmentsPerHour: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxConcurrentUploads: 8,
  maxUploadsPerIp: 2,
  maxUploadsPerVolunteer: 1,
  uploadFloorMs: 15_000,
  minUploadBytesPerSecond: 16 * 1024,
  maxFramesPerSecond: 10,
  frameBurst: 30,
  helloTimeoutMs: 10_000,
  pingIntervalMs: 30_000,
  idleTimeoutMs: 15 * 60_000,
  maxConnectionsPerIp: 64,
  maxSocketsPerToken: 4,
  maxConnectsPerIpPerMinute: 120,
  maxEventStreams: 64,
  maxEventStreamsPerIp: 8,
  maxEventStreamsPerToken: 16,
  adminEventStreams: 4,
  requestTimeoutMs: 300_000,
  maxAuthFailuresPerIpPerMinute: 30,
  maxEnrolmentsPerIpPerHour: 5,
  maxEnrolmentsPerHour: 500,
};
