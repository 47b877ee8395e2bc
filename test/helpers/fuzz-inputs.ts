/**
 * Seeded hostile inputs for test/e2e/fuzz.test.ts: control frames (valid messages mutated,
 * random JSON and bytes, frames at and over 64 KiB, broken framing) and HTTP requests as
 * bytes (odd methods, paths spelled many ways, bad tokens and headers, result uploads with
 * mutated safetensors bodies and real, stolen or forged leases, and requests that are not
 * well-formed HTTP). Everything comes from the caller's Rng: a seed replays the same inputs.
 */
import { PROTOCOL_VERSION } from '../../proto/version.ts';
import { HEADERS } from '../../proto/routes.ts';
import { encodeFFF } from '../../shared/checkpoint/fff-checkpoint.ts';
import { zeroWeights } from '../../shared/fff/weights.ts';
import type { Rng } from '../../shared/random.ts';

export const int = (rng: Rng, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));
export const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;
export const chance = (rng: Rng, p: number): boolean => rng() < p;
const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const PRINTABLE = `${ALNUM}!"#$%&'()*+,-./:;<=>?@[\\]^_\`{|}~ `;
export const text = (rng: Rng, max: number, alphabet = ALNUM): string =>
  Array.from({ length: int(rng, 0, max) }, () => alphabet[Math.floor(rng() * alphabet.length)]).join('');
export const bytes = (rng: Rng, n: number): Buffer =>
  Buffer.from(Array.from({ length: n }, () => int(rng, 0, 255)));
const words = (s: string): string[] => s.split(' ');

const NASTY = [
  ...words('NaN Infinity -0 null __proto__ constructor ../../etc/passwd r0000-s0000'),
  '',
  '\u0000',
];
const LONG = ['\ud800', '😀'.repeat(40), 'x'.repeat(129), 'x'.repeat(513), 'y'.repeat(9000)];
const NUMBERS = [0, -1, 0.5, -0.5, 2 ** 31, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 1e308, -1e308, 5e-324, 1e21];

export function randomValue(rng: Rng, depth = 0): unknown {
  const pickers: (() => unknown)[] = [
    () => pick(rng, [...NASTY, ...LONG]),
    () => (chance(rng, 0.5) ? pick(rng, NUMBERS) : (rng() - 0.5) * 10 ** int(rng, 0, 20)),
    () => pick(rng, [true, false, null, int(rng, -5, 100)]),
    () => text(rng, 40, PRINTABLE),
    () => Array.from({ length: int(rng, 0, 4) }, () => randomValue(rng, depth + 1)),
    () =>
      Object.fromEntries(
        Array.from({ length: int(rng, 0, 4) }, () => [text(rng, 9), randomValue(rng, depth + 1)]),
      ),
  ];
  return pick(rng, depth > 3 ? pickers.slice(0, 4) : pickers)();
}

export const helloMessage = (name: string) => ({
  type: 'hello',
  protocol: PROTOCOL_VERSION,
  name,
  capabilities: { backend: 'wasm', threads: 1, gpu: false, samples_per_s: 1000 },
});
export const heartbeatMessage = (unitId: string, leaseToken: string) => ({
  type: 'heartbeat',
  unit_id: unitId,
  lease_token: leaseToken,
  step: 0,
  total_steps: 1,
});

export interface Lease {
  readonly unitId: string;
  readonly workerId: string;
  readonly leaseToken: string;
}

/** What inputs aim at: ids seen in the dashboard and database, leases the fuzzing sockets were given. */
export interface Targets {
  readonly token: string;
  units: string[];
  blobs: string[];
  workers: string[];
  readonly leaseTokens: string[];
  /** Leases held by fuzzing sockets, for uploads whose bodies get judged. */
  readonly leases: Lease[];
  /** A valid (zero) delta of the job's subtree, once a lease has shown its shape. */
  template?: Uint8Array;
}

const unitId = (rng: Rng, t: Targets): string =>
  chance(rng, 0.5) && t.units.length > 0 ? pick(rng, t.units) : `r${int(rng, 0, 9999)}-s${int(rng, 0, 9)}`;
const leaseToken = (rng: Rng, t: Targets): string =>
  chance(rng, 0.4) && t.leaseTokens.length > 0 ? pick(rng, t.leaseTokens) : text(rng, 30) || 'x';

/** Follows the schema, for a unit this socket does not hold (or with a stolen token): answered, not closed. */
export function benignFrame(rng: Rng, t: Targets): Record<string, unknown> {
  const frame = heartbeatMessage(unitId(rng, t), leaseToken(rng, t));
  if (chance(rng, 0.4)) return { ...frame, step: int(rng, 0, 1000), loss: rng() * 3 };
  if (chance(rng, 0.5)) return frame;
  return { type: 'release', unit_id: frame.unit_id, lease_token: frame.lease_token, reason: text(rng, 200) };
}

export interface Frame {
  readonly label: string;
  readonly data: string | Buffer;
  readonly binary?: boolean;
  /** Written to the TCP socket as is: a WebSocket frame that breaks RFC 6455. */
  readonly raw?: boolean;
}

/** Pads a JSON object with spaces before its closing brace to `size` bytes. */
const padTo = (json: string, size: number): string =>
  `${json.slice(0, -1)}${' '.repeat(Math.max(0, size - Buffer.byteLength(json)))}}`;

/** A valid message with a field mutated, or something that never was one. */
export function hostileFrame(rng: Rng, t: Targets): Frame {
  const base: Record<string, unknown> = pick(rng, [
    helloMessage(text(rng, 20) || 'h'),
    { type: 'request_work' },
    heartbeatMessage(unitId(rng, t), leaseToken(rng, t)),
    { type: 'release', unit_id: unitId(rng, t), lease_token: leaseToken(rng, t), reason: 'fuzz' },
    { type: pick(rng, words('welcome assign no_work cancel error')), code: 'INTERNAL' },
  ]);
  const field = pick(rng, Object.keys(base));
  const json = (changes: Record<string, unknown>, drop?: string): string =>
    JSON.stringify({ ...base, ...changes, ...(drop && { [drop]: undefined }) });
  const depth = int(rng, 10, 20_000);
  const deep = chance(rng, 0.5)
    ? '['.repeat(depth) + ']'.repeat(depth)
    : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
  const s = json({});
  const at = int(rng, 0, s.length);
  const frames: [string, () => string | Buffer][] = [
    ['hello again', () => JSON.stringify({ ...helloMessage('again'), protocol: int(rng, 0, 3) })],
    ['wrong type', () => json({ [field]: randomValue(rng) })],
    ['missing field', () => json({}, field)],
    ['unknown field', () => json({ [text(rng, 10) || 'extra']: randomValue(rng) })],
    [
      'unknown type',
      () => json({ type: pick(rng, [...words('Hello hello. HEARTBEAT request-work'), text(rng, 600)]) }),
    ],
    ['huge, negative or long', () => json({ [field]: pick(rng, [...NUMBERS, ...LONG, 'x'.repeat(60_000)]) })],
    [
      'NaN-like literal',
      () =>
        s.replace(/:(\d+|"[^"]*")/, `:${pick(rng, words('NaN Infinity -Infinity 1e999 01 0x10 .5 - +1'))}`),
    ],
    ['deep nesting', () => (chance(rng, 0.5) ? deep : `{"type":"heartbeat","loss":${deep}}`)],
    ['random json', () => JSON.stringify(randomValue(rng))],
    ['random bytes', () => bytes(rng, int(rng, 1, 2000))],
    ['invalid utf-8', () => Buffer.from([0x7b, ...bytes(rng, 8), 0xc0, 0xaf, 0xff, 0x7d])],
    ['64 KiB exactly', () => padTo(s, 64 * 1024)],
    ['64 KiB + 1', () => padTo(s, 64 * 1024 + 1)],
    [
      'mangled json',
      () => pick(rng, [s.slice(0, at), s.slice(0, at) + text(rng, 3, PRINTABLE) + s.slice(at), `\ufeff${s}`]),
    ],
    ['duplicate key', () => `{"type":"request_work","type":${pick(rng, ['"hello"', '7'])}}`],
    ['empty', () => pick(rng, words('null [] "" 0 {}  '))],
  ];
  const [label, make] = pick(rng, frames);
  if (chance(rng, 0.03)) {
    // Opcode 3, RSV1 without an extension, unmasked, a ping over 125 bytes, reserved control opcode.
    const first = pick(rng, [0x83, 0xc1, 0x81, 0x89, 0x0b]);
    const frame = first === 0x81 ? [0x81, 0x02, 0x7b, 0x7d] : [first, 0xfe, 0x00, 0x80, 1, 2, 3, 4];
    return { label: 'broken framing', data: Buffer.from(frame), raw: true };
  }
  return { label, data: make(), binary: label === 'random bytes' && chance(rng, 0.5) };
}

// ---------------------------------------------------------------- HTTP

export interface HttpInput {
  readonly label: string;
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: Buffer;
  /** Not well-formed HTTP: these bytes go on the wire instead of the fields above. */
  readonly raw?: Buffer;
  /** The sender stops sending (half-close) after the bytes: a body announced longer than sent. */
  readonly halfClose?: boolean;
  readonly lease?: Lease;
}

export const encodeRequest = ({ method, path, headers, body }: HttpInput): Buffer => {
  const lines = Object.entries({
    host: '127.0.0.1',
    ...headers,
    'content-length': body?.length,
    connection: 'close',
  })
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}: ${v}\r\n`);
  return Buffer.concat([
    Buffer.from(`${method} ${path} HTTP/1.1\r\n${lines.join('')}\r\n`),
    body ?? Buffer.alloc(0),
  ]);
};

/** A valid (zero) delta of the subtree an `assign` describes: what mutated result bodies start from. */
export function zeroDelta(assign: Record<string, unknown>): Uint8Array {
  const n = (key: string) => Number(assign[key]);
  const shape = { depth: n('subtree_depth'), leafWidth: n('leaf_width'), inputWidth: n('input_width') };
  const activation = assign['activation'] === 'tanh' ? 'tanh' : 'relu';
  return encodeFFF(zeroWeights({ ...shape, outputWidth: n('output_width'), activation }));
}

/** Percent-encodes some characters, once or twice. */
export const respell = (rng: Rng, path: string): string =>
  path.replace(/[^/]/g, (c) => {
    if (!chance(rng, 0.15)) return c;
    const hex = c.charCodeAt(0).toString(16).padStart(2, '0');
    return `${chance(rng, 0.2) ? '%25' : '%'}${chance(rng, 0.5) ? hex : hex.toUpperCase()}`;
  });

function randomPath(rng: Rng, t: Targets): string {
  const sha = chance(rng, 0.5) && t.blobs.length > 0 ? pick(rng, t.blobs) : text(rng, 64, '0123456789abcdef');
  let path = pick(rng, [
    ...words('/ /v1/status /v1/shards /v1/shards/0/samples /v1/workers /v1/series /v1/events /metrics'),
    ...words(`/v1/join /v1/worker.tgz /assets/dashboard.js /v1/ws /v1/worker/arbor-worker-${sha}.tgz`),
    `/v1/blobs/${sha}`,
    `/v1/units/${unitId(rng, t)}/result`,
    `/${text(rng, 30, PRINTABLE.replace(/[ #?%"<>\\^`{|}]/g, ''))}`,
  ]);
  const suffixes = words(`%00 % %zz %c0%af %e0%80 %ff %C0%AE%C0%AE / %20 ;x=1 ?offset=${int(rng, -5, 300)}`);
  const mutations = [
    () => respell(rng, path),
    () => path.replace(/\/[^/]*$/, pick(rng, words('/.. /../status /./ // /%2e%2e/ /%2f'))) + path.slice(1),
    () => path + pick(rng, suffixes),
    () => `${path}?${text(rng, 5)}=${pick(rng, words('-1 1e9 NaN %00 99999999999999999999 a[]=1'))}&limit=-1`,
    () => path + 'a'.repeat(int(rng, 80, chance(rng, 0.8) ? 2000 : 20_000)),
    () => path.toUpperCase(),
  ];
  for (let n = int(rng, 0, 2); n > 0; n--) path = pick(rng, mutations)();
  return path;
}

const bearer = (rng: Rng, token: string): string | undefined =>
  pick(rng, [
    ...`Bearer ${token}|Bearer ${token}|Bearer ${token}|Bearer ${token}x|Bearer |bearer ${token}`.split('|'),
    ...[undefined, `Basic ${btoa(`a:${token}`)}`, `Bearer ${'a'.repeat(9000)}`, `Bearer ${text(rng, 40)}`],
  ]);

function randomHeaders(rng: Rng, t: Targets): Record<string, string | undefined> {
  const maybe = (p: number, value: () => string) => (chance(rng, p) ? value() : undefined);
  return {
    authorization: bearer(rng, t.token),
    'content-type': maybe(0.3, () =>
      pick(rng, words('application/json text/plain application/octet-stream')),
    ),
    range: maybe(0.15, () =>
      pick(rng, words('bytes=0-10 bytes=-5 bytes=10- bytes=5-1 bytes=0-0,5-9 items=0-1')),
    ),
    'if-none-match': maybe(0.05, () => `"${t.blobs[0] ?? 'x'}"`),
    'last-event-id': maybe(0.1, () => pick(rng, words('-1 1e3 abc 99999999999999999999 5'))),
    expect: maybe(0.04, () => pick(rng, ['100-continue', 'nothing'])),
    'content-encoding': maybe(0.04, () => pick(rng, words('gzip br x'))),
    'x-huge': maybe(0.02, () => 'a'.repeat(int(rng, 8_000, 20_000))),
    [`x-${text(rng, 8)}`]: maybe(0.1, () => text(rng, 100, PRINTABLE)),
  };
}

/** A valid safetensors delta mutated: bytes flipped or cut, lengths and header fields lied about, values made non-finite. */
export function mutateSafetensors(rng: Rng, valid: Uint8Array): Buffer {
  const body = Buffer.from(valid);
  const headerLength = Number(body.readBigUInt64LE(0));
  const header = JSON.parse(body.subarray(8, 8 + headerLength).toString()) as Record<string, object>;
  const rebuild = (): Buffer => {
    const json = Buffer.from(JSON.stringify(header));
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(json.length));
    return Buffer.concat([length, json, body.subarray(8 + headerLength)]);
  };
  const tensors = Object.keys(header).filter((k) => k !== '__metadata__');
  const tensor = pick(rng, tensors);
  const data = new DataView(body.buffer, body.byteOffset + 8 + headerLength);
  const lies = [...words('F64 I32 f32'), [], [-1], [2 ** 31, 2 ** 31], [0, 1e300], [1.5], null, [0, 1e9]];
  const mutations = [
    () => bytes(rng, int(rng, 0, 4096)),
    () => body.subarray(0, int(rng, 0, body.length - 1)),
    () => (body.writeBigUInt64LE(pick(rng, [0n, 7n, 2n ** 64n - 1n, 2n ** 53n, BigInt(body.length)])), body),
    () => (
      (header[tensor] = {
        ...header[tensor],
        [pick(rng, words('dtype shape data_offsets'))]: pick(rng, lies),
      }),
      rebuild()
    ),
    () => (delete header[tensor], rebuild()),
    () => ((header[`extra.${text(rng, 8)}`] = { dtype: 'F32', shape: [1], data_offsets: [0, 4] }), rebuild()),
    () => (
      (header['__metadata__'] = {
        ...header['__metadata__'],
        [pick(rng, words('format depth leaf_width'))]: '99',
      }),
      rebuild()
    ),
    () => Buffer.concat([body, bytes(rng, int(rng, 1, 64))]),
    () => body, // a zero delta: well-formed, shows no work
    () => {
      const value = pick(rng, [NaN, Infinity, -Infinity, 3e38]);
      for (let i = int(rng, 1, 20); i > 0; i--)
        data.setFloat32(4 * int(rng, 0, data.byteLength / 4 - 1), value, true);
      return body;
    },
    () => {
      for (let i = int(rng, 1, 30); i > 0; i--) body[int(rng, 0, body.length - 1)] = int(rng, 0, 255);
      return body;
    },
  ];
  return pick(rng, mutations)();
}

/** A result upload: with a lease a fuzzing socket holds (then its body is judged), or stolen, forged, none. */
function upload(rng: Rng, t: Targets): HttpInput {
  const lease = chance(rng, 0.35) ? t.leases.shift() : undefined;
  const variant = lease ? pick(rng, words('own own own worker token unit')) : 'forged';
  const metrics = { train_loss: rng(), samples: int(rng, 0, 5000), seconds: 1 };
  const unit = variant === 'unit' || !lease ? pick(rng, [...t.units, 'r0-s0']) : lease.unitId;
  const path = `/v1/units/${unit}/result`;
  return {
    label: `upload (${variant} lease)`,
    method: chance(rng, 0.95) ? 'PUT' : 'POST',
    path: chance(rng, 0.1) ? respell(rng, path) : path,
    headers: {
      ...(chance(rng, 0.93) && { authorization: `Bearer ${t.token}` }),
      'content-type': chance(rng, 0.9) ? 'application/octet-stream' : 'application/json',
      [HEADERS.worker]:
        variant === 'own' || variant === 'token' ? lease!.workerId : pick(rng, [...t.workers, 'w-0']),
      [HEADERS.lease]: ['token', 'forged'].includes(variant) ? leaseToken(rng, t) : lease!.leaseToken,
      [HEADERS.metrics]: JSON.stringify({
        ...metrics,
        ...(chance(rng, 0.2) && { samples: randomValue(rng) }),
      }),
    },
    body: t.template ? mutateSafetensors(rng, t.template) : bytes(rng, int(rng, 0, 4096)),
    ...(lease && { lease }),
  };
}

/** Bytes that a client of HTTP/1.1 would not send: the request `input`, mangled. */
function malformed(rng: Rng, input: HttpInput): HttpInput {
  const s = encodeRequest({ ...input, body: Buffer.from('abcd') }).toString('latin1');
  const rest = s.slice(s.indexOf('\r\n'));
  const length = (to: string) => s.replace('content-length: 4', to);
  const mangles: [string, () => string, boolean?][] = [
    ['unknown method', () => s.replace(/^\S+/, pick(rng, words('FOO get PROPFIND BREW M-SEARCH')))],
    ['connect', () => `CONNECT 127.0.0.1:22 HTTP/1.1${rest}`],
    ['bad version', () => s.replace('HTTP/1.1', pick(rng, words('HTTP/9.9 HTTP/1 HTTPS/1.1 HTTP/1.1x')))],
    ['raw bytes in path', () => s.replace(' /', ` /${text(rng, 8, '\u0000\u007f\u00ff\u00e9 \t')}`)],
    ['garbage', () => `${text(rng, 200, PRINTABLE)}x\r\n\r\n`],
    ['header without colon', () => s.replace('\r\n', `\r\n${text(rng, 20)}\r\n`)],
    ['header with NUL', () => s.replace('\r\n', '\r\nx-a: a\u0000b\r\n')],
    ['obs-fold', () => s.replace('\r\n', '\r\nx-a: a\r\n folded\r\n')],
    ['huge header', () => s.replace('\r\n', `\r\nx-big: ${'a'.repeat(int(rng, 17_000, 40_000))}\r\n`)],
    ['bare LF', () => s.replace(/\r\n/g, '\n')],
    ['two lengths', () => length('content-length: 4\r\ncontent-length: 5')],
    ['length and chunked', () => length('content-length: 4\r\ntransfer-encoding: chunked')],
    [
      'bad length',
      () => length(`content-length: ${pick(rng, words('-1 abc 1e3 0x4 99999999999999999999'))}`),
    ],
    ['bad chunk', () => length('transfer-encoding: chunked').replace(/abcd$/, 'zz\r\n')],
    ['length over body', () => length('content-length: 5000'), true],
    ['length under body', () => `${length('content-length: 2')} GET / HTTP/1.1\r\n\r\n`],
    ['upgrade without key', () => `GET /v1/ws HTTP/1.1\r\nupgrade: websocket\r\nconnection: upgrade${rest}`],
    ['upgrade elsewhere', () => `GET ${respell(rng, '/v1/ws')}x HTTP/1.1\r\nupgrade: websocket${rest}`],
  ];
  const [label, mangle, halfClose] = pick(rng, mangles);
  return { ...input, label, raw: Buffer.from(mangle(), 'latin1'), ...(halfClose && { halfClose }) };
}

/** One HTTP input: an upload (30 %) or any request, 15 % of them then mangled into something that is not HTTP. */
export function httpInput(rng: Rng, t: Targets): HttpInput {
  const method = pick(rng, words('GET GET GET HEAD POST PUT PUT DELETE PATCH OPTIONS'));
  const bodies = [bytes(rng, int(rng, 0, 3000)), Buffer.from(JSON.stringify(randomValue(rng)))];
  const body = ['GET', 'HEAD'].includes(method) || chance(rng, 0.3) ? undefined : pick(rng, bodies);
  const input: HttpInput = chance(rng, 0.3)
    ? upload(rng, t)
    : {
        label: 'request',
        method,
        path: randomPath(rng, t),
        headers: JSON.parse(JSON.stringify(randomHeaders(rng, t))) as Record<string, string>, // without the undefined
        ...(body && { body }),
      };
  return chance(rng, 0.15) ? malformed(rng, input) : input;
}
