/**
 * The one error catalogue: every code has a stable name, a close code (WebSocket) and/or an
 * HTTP status, and says whether the caller should retry. What crosses the wire is
 * `{code, message, retryable}` (see `ProtocolError.toWire`).
 */
export interface ErrorSpec {
  readonly wsClose?: number;
  readonly httpStatus?: number;
  readonly retryable: boolean;
  readonly description: string;
}

export const ERRORS = {
  BAD_MESSAGE: {
    wsClose: 4000,
    httpStatus: 400,
    retryable: false,
    description: 'The frame or body is not valid JSON or does not match the schema.',
  },
  UNSUPPORTED_VERSION: {
    wsClose: 4001,
    httpStatus: 426,
    retryable: false,
    description: 'The protocol version in hello is not supported by this coordinator.',
  },
  UNAUTHORIZED: {
    wsClose: 4003,
    httpStatus: 401,
    retryable: false,
    description: 'Missing or invalid worker token.',
  },
  RATE_LIMITED: {
    wsClose: 4029,
    httpStatus: 429,
    retryable: true,
    description:
      'Too many requests, connections or frames, or an upload slower than the minimum transfer rate; back off and retry.',
  },
  FRAME_TOO_LARGE: {
    wsClose: 4009,
    httpStatus: 413,
    retryable: false,
    description:
      'The frame or body exceeds the advertised size limit. (A WebSocket frame over max_frame_bytes is closed by the socket layer with 1009.)',
  },
  UNKNOWN_UNIT: {
    httpStatus: 404,
    retryable: false,
    description: 'The work unit does not exist or is not assigned to this worker.',
  },
  LEASE_LOST: {
    httpStatus: 409,
    retryable: false,
    description: 'The lease expired or was reassigned; the lease token no longer matches.',
  },
  DELTA_INVALID: {
    httpStatus: 422,
    retryable: false,
    description: 'The result body is malformed (bad safetensors, wrong shapes, non-finite values).',
  },
  DELTA_REJECTED: {
    httpStatus: 422,
    retryable: false,
    description: 'The result was well-formed but rejected by validation (e.g. norm or loss checks).',
  },
  NOT_FOUND: {
    httpStatus: 404,
    retryable: false,
    description: 'The requested resource (e.g. a blob) does not exist.',
  },
  INTERNAL: {
    wsClose: 4500,
    httpStatus: 500,
    retryable: true,
    description: 'Unexpected coordinator failure.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

export function isErrorCode(x: unknown): x is ErrorCode {
  return typeof x === 'string' && Object.hasOwn(ERRORS, x);
}

export interface WireError {
  code: ErrorCode;
  message: string;
  retryable: boolean;
}

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ERRORS[code].description, options);
    this.code = code;
    this.retryable = ERRORS[code].retryable;
  }

  get spec(): ErrorSpec {
    return ERRORS[this.code];
  }

  toWire(): WireError {
    return { code: this.code, message: this.message, retryable: this.retryable };
  }
}
