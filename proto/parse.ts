/**
 * The only place where wire bytes become typed values. Each frame is size-checked, parsed
 * as JSON, dispatched on `type` and validated against that message's compiled schema;
 * anything else throws a ProtocolError whose message names the first offending field.
 */
import type { Static, TObject, TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ProtocolError } from './errors.ts';
import {
  COORDINATOR_MESSAGES,
  type CoordinatorMessage,
  EnrolRequest,
  EnrolResponse,
  ResultMetrics,
  ResultResponse,
  WORKER_MESSAGES,
  type WorkerMessage,
} from './messages.ts';
import { PROTOCOL_VERSION } from './version.ts';

type Raw = string | Uint8Array;

// A byte-order mark stays in the text, so JSON.parse refuses it as it always did.
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
const encoder = new TextEncoder();

function compileByType<T extends TObject>(schemas: readonly T[]): ReadonlyMap<string, TypeCheck<T>> {
  const map = new Map<string, TypeCheck<T>>();
  for (const schema of schemas) {
    const literal = (schema.properties as Record<string, { const?: unknown }>).type?.const;
    if (typeof literal !== 'string') throw new Error('message schema without a literal type');
    map.set(literal, TypeCompiler.Compile(schema));
  }
  return map;
}

const workerChecks = compileByType<TObject>(Object.values(WORKER_MESSAGES));
const coordinatorChecks = compileByType<TObject>(Object.values(COORDINATOR_MESSAGES));
const resultMetricsCheck = TypeCompiler.Compile(ResultMetrics);
const resultResponseCheck = TypeCompiler.Compile(ResultResponse);
const enrolRequestCheck = TypeCompiler.Compile(EnrolRequest);
const enrolResponseCheck = TypeCompiler.Compile(EnrolResponse);

function decodeJson(raw: Raw, maxBytes: number): unknown {
  const bytes = typeof raw === 'string' ? encoder.encode(raw).byteLength : raw.byteLength;
  if (bytes > maxBytes)
    throw new ProtocolError('FRAME_TOO_LARGE', `frame is ${bytes} bytes, limit ${maxBytes}`);
  const text = typeof raw === 'string' ? raw : utf8.decode(raw);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ProtocolError('BAD_MESSAGE', `not JSON: ${(error as Error).message}`, { cause: error });
  }
}

function check<T extends TSchema>(checker: TypeCheck<T>, value: unknown, what: string): Static<T> {
  if (checker.Check(value)) return value;
  const first = checker.Errors(value).First();
  const where = first?.path === undefined || first.path === '' ? '/' : first.path;
  throw new ProtocolError('BAD_MESSAGE', `${what}: ${where}: ${first?.message ?? 'invalid'}`);
}

function dispatch(value: unknown, checks: ReadonlyMap<string, TypeCheck<TObject>>): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ProtocolError('BAD_MESSAGE', 'message must be a JSON object');
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string') throw new ProtocolError('BAD_MESSAGE', '/type: must be a string');
  const checker = checks.get(type);
  if (checker === undefined)
    throw new ProtocolError(
      'BAD_MESSAGE',
      `/type: unknown message type ${JSON.stringify(type).slice(0, 80)}`,
    );
  return check(checker, value, type);
}

/** Parse a frame a worker sent to the coordinator. */
export function parseWorkerMessage(raw: Raw, maxBytes: number): WorkerMessage {
  const value = decodeJson(raw, maxBytes);
  if (typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'hello') {
    const protocol = (value as { protocol?: unknown }).protocol;
    if (typeof protocol === 'number' && Number.isInteger(protocol) && protocol !== PROTOCOL_VERSION)
      throw new ProtocolError(
        'UNSUPPORTED_VERSION',
        `this worker speaks protocol ${protocol} and this coordinator ${PROTOCOL_VERSION}: ` +
          "run the join command the coordinator's dashboard shows, which fetches its own worker",
      );
  }
  return dispatch(value, workerChecks) as WorkerMessage;
}

/** Parse a frame the coordinator sent to a worker. */
export function parseCoordinatorMessage(raw: Raw, maxBytes: number): CoordinatorMessage {
  return dispatch(decodeJson(raw, maxBytes), coordinatorChecks) as CoordinatorMessage;
}

/** Parse the metrics that accompany a result upload (header value or JSON part). */
export function parseResultMetrics(raw: Raw, maxBytes = 4096): ResultMetrics {
  return check(resultMetricsCheck, decodeJson(raw, maxBytes), 'result metrics');
}

/** Parse the coordinator's answer to a result upload. */
export function parseResultResponse(raw: Raw, maxBytes = 4096): ResultResponse {
  return check(resultResponseCheck, decodeJson(raw, maxBytes), 'result response');
}

/** Parse the body of POST /v1/enrol. */
export function parseEnrolRequest(raw: Raw, maxBytes = 4096): EnrolRequest {
  return check(enrolRequestCheck, decodeJson(raw, maxBytes), 'enrolment request');
}

/** Parse the coordinator's answer to an enrolment. */
export function parseEnrolResponse(raw: Raw, maxBytes = 4096): EnrolResponse {
  return check(enrolResponseCheck, decodeJson(raw, maxBytes), 'enrolment response');
}
