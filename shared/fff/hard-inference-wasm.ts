/**
 * WebAssembly SIMD (f32x4) kernels for hard FFF inference, assembled at load time by a
 * tiny emitter (no toolchain, no npm package). The module imports its memory
 * (`env.memory`) and exports three kernels; all pointers are byte offsets into it.
 *
 *   route_samples(nodes, bias, xBase, n, levels, out, rowBytes)
 *     For each sample s < n walks `levels` levels from the root: node = 2·node+1+(w·x+b > 0),
 *     and stores out[s] = node - (2^levels - 1), the node's index within its level. The
 *     sample's row stays in L1 across its levels. nodes: [N][rowBytes], bias: f32[N].
 *
 *   leaf_hidden(wPacked, blocks, xBase, idx, count, out, rowBytes)
 *     out[k*4*blocks + u] = x row idx[k] · W1[:, u]  for k < count, u < 4*blocks (no b1)
 *     wPacked holds one leaf's W1 as `blocks` blocks of 4 hidden units, each interleaved
 *     [I/4][4 units][4 inputs], so one pointer and immediate offsets address all 4 units;
 *     two samples share every weight load (8 accumulators).
 *
 *   leaf_out(hidden, b1, w2, b2, idx, count, out, Lp, Ov, relu)
 *     For k < count: h = hidden[k*Lp ..] + b1 (then max(h, 0) if relu),
 *     out row idx[k] (Ov*4 floats) = b2 + Σ_u h[u]·W2[u, :]. W2 is [Lp][Ov*4].
 *
 * Constraints (guaranteed by the caller): rowBytes is a positive multiple of 64 (input
 * rows zero-padded to a multiple of 16 floats), all pointers are 16-byte aligned.
 * Loop bodies are kept short on purpose: TurboFan issues all loads of an iteration first,
 * and longer bodies (8 accumulators, 2x unrolling) spilled and ran 20-50% slower.
 */

const I32 = 0x7f;
const V128 = 0x7b;

type Code = (number | Code)[];

function flat(code: Code, out: number[] = []): number[] {
  for (const c of code) {
    if (typeof c === 'number') out.push(c);
    else flat(c, out);
  }
  return out;
}

function uleb(value: number): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

function sleb(value: number): number[] {
  const out: number[] = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const str = (s: string): number[] => vec([...new TextEncoder().encode(s)].map((b) => [b]));
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

// --- instructions -------------------------------------------------------------------
const get = (i: number): Code => [0x20, ...uleb(i)];
const set = (i: number): Code => [0x21, ...uleb(i)];
const i32c = (v: number): Code => [0x41, ...sleb(v)];
const I32_ADD = 0x6a;
const I32_SUB = 0x6b;
const I32_SHL = 0x74;
const F32_GT = 0x5e;
const F32_MAX = 0x97;
const f32c0: Code = [0x43, 0, 0, 0, 0];
const f32Load = (offset = 0): Code => [0x2a, 2, ...uleb(offset)];
const I32_MUL = 0x6c;
const I32_LT_U = 0x49;
const I32_GT_S = 0x4a;
const I32_GE_S = 0x4e;
const F32_ADD = 0x92;
const BLOCK: Code = [0x02, 0x40];
const LOOP: Code = [0x03, 0x40];
const END = 0x0b;
const br = (depth: number): Code => [0x0c, ...uleb(depth)];
const brIf = (depth: number): Code => [0x0d, ...uleb(depth)];
const i32Load = (offset = 0): Code => [0x28, 2, ...uleb(offset)];
const I32_STORE: Code = [0x36, 2, 0];
const f32Store = (offset = 0): Code => [0x38, 2, ...uleb(offset)];
const simd = (op: number): Code => [0xfd, ...uleb(op)];
const vLoad = (offset = 0): Code => [simd(0x00), 4, ...uleb(offset)];
const V_ZERO: Code = [simd(0x0c), ...new Array<number>(16).fill(0)];
const F32X4_ADD = simd(228);
const F32X4_MUL = simd(230);
const F32X4_SPLAT = simd(0x13);
const vStore = (offset = 0): Code => [simd(0x0b), 4, ...uleb(offset)];
const lane = (l: number): Code => [simd(0x1f), l];

/** local[dst] += local[a] * local[b] (all v128). */
const mulAcc = (dst: number, a: Code, b: Code): Code => [get(dst), a, b, F32X4_MUL, F32X4_ADD, set(dst)];
/** Horizontal sum of a v128 expression left on the stack as one f32: (l0+l1)+(l2+l3). */
const hsum = (v: Code, tmp: number): Code => [
  v,
  set(tmp),
  get(tmp),
  lane(0),
  get(tmp),
  lane(1),
  F32_ADD,
  get(tmp),
  lane(2),
  get(tmp),
  lane(3),
  F32_ADD,
  F32_ADD,
];
const inc = (local: number, by: Code | number): Code => [
  get(local),
  typeof by === 'number' ? i32c(by) : by,
  I32_ADD,
  set(local),
];

interface Func {
  params: number[];
  locals: number[];
  body: Code;
}

function encodeFunc(f: Func): number[] {
  const locals = f.locals.map((t) => [1, t]);
  const body = [...vec(locals), ...flat(f.body), END];
  return [...uleb(body.length), ...body];
}

// --- leaf_hidden --------------------------------------------------------------------
function leafHidden(): Func {
  // params
  const wp = 0,
    blocks = 1,
    xb = 2,
    idx = 3,
    count = 4,
    out = 5,
    rb = 6;
  // i32 locals
  const k = 7,
    q0 = 8,
    q1 = 9,
    p0 = 10,
    p1 = 11,
    pw = 12,
    wEnd = 13,
    o = 14,
    r = 15,
    blockBytes = 16;
  // v128 locals: s0[u] for sample 0 unit u, s1[u] for sample 1
  const s0 = [17, 18, 19, 20];
  const s1 = [21, 22, 23, 24];
  const x0 = 25,
    x1 = 26,
    wv = 27,
    tmp = 28;
  const stride = 29; // i32: bytes of one output row (4 * blocks floats)
  const rowPtr = (m: number): Code => [
    get(xb),
    get(idx),
    get(k),
    i32c(4),
    I32_MUL,
    I32_ADD,
    i32Load(m * 4),
    get(rb),
    I32_MUL,
    I32_ADD,
  ];
  /** One 4-input chunk for both samples: x at byte offset xo, packed weights at wo. */
  const chunk2 = (xo: number, wo: number): Code => [
    [get(p0), vLoad(xo), set(x0)],
    [get(p1), vLoad(xo), set(x1)],
    [0, 1, 2, 3].map((u) => [
      [get(pw), vLoad(wo + 16 * u), set(wv)],
      mulAcc(s0[u]!, get(x0), get(wv)),
      mulAcc(s1[u]!, get(x1), get(wv)),
    ]),
  ];
  const chunk1 = (xo: number, wo: number): Code => [
    [get(p0), vLoad(xo), set(x0)],
    [0, 1, 2, 3].map((u) => mulAcc(s0[u]!, get(x0), [get(pw), vLoad(wo + 16 * u)])),
  ];
  const store = (acc: number[], extra: number): Code =>
    [0, 1, 2, 3].map((u) => [get(o), hsum(get(acc[u]!), tmp), f32Store(extra + 4 * u)]);
  const body: Code = [
    i32c(0),
    set(k),
    get(out),
    set(o),
    // bytes of one packed block of 4 units = 4 * rowBytes
    get(rb),
    i32c(4),
    I32_MUL,
    set(blockBytes),
    get(blocks),
    i32c(16),
    I32_MUL,
    set(stride),
    // pairs of samples
    BLOCK,
    LOOP,
    [get(k), i32c(2), I32_ADD, get(count), I32_GT_S, brIf(1)],
    rowPtr(0),
    set(q0),
    rowPtr(1),
    set(q1),
    get(wp),
    set(pw),
    i32c(0),
    set(r),
    LOOP,
    get(q0),
    set(p0),
    get(q1),
    set(p1),
    get(pw),
    get(blockBytes),
    I32_ADD,
    set(wEnd),
    [0, 1, 2, 3].map((u) => [V_ZERO, set(s0[u]!), V_ZERO, set(s1[u]!)]),
    LOOP,
    chunk2(0, 0),
    inc(p0, 16),
    inc(p1, 16),
    inc(pw, 64),
    [get(pw), get(wEnd), I32_LT_U, brIf(0)],
    END,
    store(s0, 0),
    // sample 1 of the pair sits one output row (blocks*16 bytes) further
    [0, 1, 2, 3].map((u) => [get(o), get(stride), I32_ADD, hsum(get(s1[u]!), tmp), f32Store(4 * u)]),
    inc(o, 16),
    inc(r, 1),
    [get(r), get(blocks), I32_LT_U, brIf(0)],
    END,
    // skip sample 1's row, already written
    inc(o, get(stride)),
    inc(k, 2),
    br(0),
    END,
    END,
    // a last odd sample
    BLOCK,
    LOOP,
    [get(k), get(count), I32_GE_S, brIf(1)],
    rowPtr(0),
    set(q0),
    get(wp),
    set(pw),
    i32c(0),
    set(r),
    LOOP,
    get(q0),
    set(p0),
    get(pw),
    get(blockBytes),
    I32_ADD,
    set(wEnd),
    [0, 1, 2, 3].map((u) => [V_ZERO, set(s0[u]!)]),
    LOOP,
    chunk1(0, 0),
    inc(p0, 16),
    inc(pw, 64),
    [get(pw), get(wEnd), I32_LT_U, brIf(0)],
    END,
    store(s0, 0),
    inc(o, 16),
    inc(r, 1),
    [get(r), get(blocks), I32_LT_U, brIf(0)],
    END,
    inc(k, 1),
    br(0),
    END,
    END,
  ];
  return {
    params: [I32, I32, I32, I32, I32, I32, I32],
    // i32 locals 7..16, v128 locals 17..28, i32 local 29 (stride)
    locals: [...new Array<number>(10).fill(I32), ...new Array<number>(12).fill(V128), I32],
    body,
  };
}

// --- route_samples ------------------------------------------------------------------
function routeSamples(): Func {
  // params
  const nodes = 0,
    bias = 1,
    xb = 2,
    n = 3,
    levels = 4,
    out = 5,
    rb = 6;
  // i32 locals
  const s = 7,
    node = 8,
    d = 9,
    px = 10,
    pw = 11,
    wEnd = 12;
  // v128 locals. 4 accumulators over 64-byte steps measured fastest on V8 (8 accumulators
  // or unrolling to 128-byte steps were 20-40% slower).
  const a = [13, 14, 15, 16];
  const tmp = 17;
  const body: Code = [
    i32c(0),
    set(s),
    BLOCK,
    LOOP,
    [get(s), get(n), I32_GE_S, brIf(1)],
    i32c(0),
    set(node),
    i32c(0),
    set(d),
    BLOCK,
    LOOP,
    [get(d), get(levels), I32_GE_S, brIf(1)],
    [get(xb), get(s), get(rb), I32_MUL, I32_ADD, set(px)],
    [get(nodes), get(node), get(rb), I32_MUL, I32_ADD, set(pw)],
    [get(pw), get(rb), I32_ADD, set(wEnd)],
    a.map((acc) => [V_ZERO, set(acc)]),
    LOOP,
    a.map((acc, m) => mulAcc(acc, [get(px), vLoad(16 * m)], [get(pw), vLoad(16 * m)])),
    inc(px, 64),
    inc(pw, 64),
    [get(pw), get(wEnd), I32_LT_U, brIf(0)],
    END,
    // node = 2*node + 1 + (w·x + b > 0)
    get(node),
    i32c(1),
    I32_SHL,
    i32c(1),
    I32_ADD,
    hsum([get(a[0]!), get(a[1]!), F32X4_ADD, get(a[2]!), get(a[3]!), F32X4_ADD, F32X4_ADD], tmp),
    get(bias),
    get(node),
    i32c(4),
    I32_MUL,
    I32_ADD,
    f32Load(0),
    F32_ADD,
    f32c0,
    F32_GT,
    I32_ADD,
    set(node),
    inc(d, 1),
    br(0),
    END,
    END,
    // out[s] = node - (2^levels - 1)
    get(out),
    get(s),
    i32c(4),
    I32_MUL,
    I32_ADD,
    get(node),
    i32c(1),
    get(levels),
    I32_SHL,
    i32c(1),
    I32_SUB,
    I32_SUB,
    I32_STORE,
    inc(s, 1),
    br(0),
    END,
    END,
  ];
  return {
    params: [I32, I32, I32, I32, I32, I32, I32],
    locals: [...new Array<number>(6).fill(I32), ...new Array<number>(5).fill(V128)],
    body,
  };
}

// --- leaf_out -----------------------------------------------------------------------
function leafOut(): Func {
  // params
  const hid = 0,
    b1 = 1,
    w2 = 2,
    b2 = 3,
    idx = 4,
    count = 5,
    out = 6,
    lp = 7,
    ov = 8,
    relu = 9;
  // i32 locals
  const k = 10,
    ob = 11,
    l = 12,
    v = 13,
    pw = 14,
    rowBytes = 15;
  // f32 local
  const h = 16;
  // v128 local
  const hv = 17;
  const body: Code = [
    get(ov),
    i32c(16),
    I32_MUL,
    set(rowBytes),
    i32c(0),
    set(k),
    BLOCK,
    LOOP,
    [get(k), get(count), I32_GE_S, brIf(1)],
    // ob = out + idx[k] * rowBytes
    get(out),
    get(idx),
    get(k),
    i32c(4),
    I32_MUL,
    I32_ADD,
    i32Load(0),
    get(rowBytes),
    I32_MUL,
    I32_ADD,
    set(ob),
    // out row = b2
    i32c(0),
    set(v),
    LOOP,
    get(ob),
    get(v),
    I32_ADD,
    get(b2),
    get(v),
    I32_ADD,
    vLoad(0),
    vStore(0),
    inc(v, 16),
    [get(v), get(rowBytes), I32_LT_U, brIf(0)],
    END,
    get(w2),
    set(pw),
    i32c(0),
    set(l),
    LOOP,
    // h = hidden[k*lp + l] + b1[l], relu if asked
    get(hid),
    get(k),
    get(lp),
    I32_MUL,
    get(l),
    I32_ADD,
    i32c(4),
    I32_MUL,
    I32_ADD,
    f32Load(0),
    get(b1),
    get(l),
    i32c(4),
    I32_MUL,
    I32_ADD,
    f32Load(0),
    F32_ADD,
    set(h),
    get(relu),
    [0x04, 0x40],
    get(h),
    f32c0,
    F32_MAX,
    set(h),
    END,
    get(h),
    F32X4_SPLAT,
    set(hv),
    i32c(0),
    set(v),
    LOOP,
    get(ob),
    get(v),
    I32_ADD,
    get(ob),
    get(v),
    I32_ADD,
    vLoad(0),
    get(hv),
    get(pw),
    get(v),
    I32_ADD,
    vLoad(0),
    F32X4_MUL,
    F32X4_ADD,
    vStore(0),
    inc(v, 16),
    [get(v), get(rowBytes), I32_LT_U, brIf(0)],
    END,
    inc(pw, get(rowBytes)),
    inc(l, 1),
    [get(l), get(lp), I32_LT_U, brIf(0)],
    END,
    inc(k, 1),
    br(0),
    END,
    END,
  ];
  return {
    params: new Array<number>(10).fill(I32),
    locals: [...new Array<number>(6).fill(I32), 0x7d, V128],
    body,
  };
}

function buildModule(): Uint8Array<ArrayBuffer> {
  const funcs = [routeSamples(), leafHidden(), leafOut()];
  const names = ['route_samples', 'leaf_hidden', 'leaf_out'];
  const types = funcs.map((f) => [0x60, ...vec(f.params.map((t) => [t])), ...vec([])]);
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec(types)),
    ...section(2, vec([[...str('env'), ...str('memory'), 0x02, 0x00, ...uleb(1)]])),
    ...section(3, vec(funcs.map((_, i) => uleb(i)))),
    ...section(7, vec(names.map((n, i) => [...str(n), 0x00, ...uleb(i)]))),
    ...section(10, vec(funcs.map(encodeFunc))),
  ];
  return new Uint8Array(bytes);
}

export interface WasmKernels {
  readonly memory: WebAssembly.Memory;
  leafHidden(
    wPacked: number,
    blocks: number,
    xBase: number,
    idx: number,
    count: number,
    out: number,
    rowBytes: number,
  ): void;
  routeSamples(
    nodes: number,
    bias: number,
    xBase: number,
    n: number,
    levels: number,
    out: number,
    rowBytes: number,
  ): void;
  leafOut(
    hidden: number,
    b1: number,
    w2: number,
    b2: number,
    idx: number,
    count: number,
    out: number,
    paddedLeafWidth: number,
    outputVectors: number,
    relu: number,
  ): void;
}

let cachedModule: WebAssembly.Module | null | undefined;

/** The compiled module, or null when this runtime has no WebAssembly SIMD. */
export function hardInferenceWasmModule(): WebAssembly.Module | null {
  if (cachedModule !== undefined) return cachedModule;
  try {
    const bytes = buildModule();
    cachedModule =
      typeof WebAssembly === 'object' && WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  } catch {
    cachedModule = null;
  }
  return cachedModule;
}

export const wasmSimdSupported = (): boolean => hardInferenceWasmModule() !== null;

/** A fresh instance with its own memory of `initialBytes` (rounded up to 64 KiB pages). */
export function instantiateKernels(initialBytes: number): WasmKernels {
  const module = hardInferenceWasmModule();
  if (module === null) throw new Error('WebAssembly SIMD is not available in this runtime');
  const memory = new WebAssembly.Memory({ initial: Math.max(1, Math.ceil(initialBytes / 65536)) });
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const e = instance.exports as unknown as {
    leaf_hidden: WasmKernels['leafHidden'];
    route_samples: WasmKernels['routeSamples'];
    leaf_out: WasmKernels['leafOut'];
  };
  return {
    memory,
    leafHidden: e.leaf_hidden,
    routeSamples: e.route_samples,
    leafOut: e.leaf_out,
  };
}

/** Exposed for tests: the raw module bytes. */
export const hardInferenceWasmBytes = (): Uint8Array<ArrayBuffer> => buildModule();
