/**
 * Hard (conditional) inference of an FFF on the CPU without a tensor library.
 *
 * Per sample: D node dot products along its root-to-leaf path (go right when w·x+b > 0),
 * then only that leaf's MLP `act(x W1 + b1) W2 + b2`. Cost O(D + L) neurons per sample.
 *
 * How it is fast (D=9, L=8, I=784, O=10, batch 2048: ~2.4 ms on one core, ~190x the
 * tfjs-wasm dense layer of the same width; see bench/inference.ts):
 * - Routing walks one sample at a time down its path, so its input row stays in L1 for
 *   all D dot products (grouping samples per node instead streams the whole batch from
 *   L3 once per level and measured slower).
 * - Samples are then grouped by leaf with a counting sort, and each leaf's W1 is applied
 *   to all its samples in one go, two samples per weight load.
 * - The heavy loops run in a small WebAssembly SIMD module (hard-inference-wasm.ts) on
 *   weights packed once at compile time (zero-padded, leaf W1 interleaved for SIMD);
 *   a pure-JS engine with the same structure is the fallback (~12x slower).
 * - Large batches are processed in chunks (default 8192 samples) so memory stays bounded.
 *
 * `compileHardInference(weights)` packs the weights once; the model is reused across calls
 * and does not see later changes to `weights` (compile again after an update).
 */
import { instantiateKernels, wasmSimdSupported, type WasmKernels } from './hard-inference-wasm.ts';
import { type FFFShape, type FFFWeights, leafCount, nodeCount } from './weights.ts';

export { wasmSimdSupported } from './hard-inference-wasm.ts';

export type HardKernel = 'wasm-simd' | 'js';

export interface HardInferenceOptions {
  /** 'auto' (default): wasm SIMD when available, else JS. 'wasm' throws if unavailable. */
  readonly kernel?: 'auto' | 'wasm' | 'js';
  /** Samples processed per internal chunk (default 8192). */
  readonly chunkSize?: number;
}

export interface HardInferenceModel {
  readonly shape: FFFShape;
  /** Which engine runs the dot products. */
  readonly kernel: HardKernel;
  /** Logits, row-major [n, outputWidth]. `x` is row-major [n, inputWidth]. */
  predictLogits(x: Float32Array, n: number): Float32Array;
  /** Argmax of the logits per sample (first maximum on ties). */
  predictClasses(x: Float32Array, n: number): Int32Array;
  /** Leaf index (0..2^D-1, left to right) per sample. */
  route(x: Float32Array, n: number): Int32Array;
  /**
   * Index (0..2^levels-1, left to right within that level) of the node reached after
   * `levels` decisions, i.e. the shard id when the top `levels` levels are frozen.
   * Equals route(x, n)[i] >> (D - levels).
   */
  routeToDepth(x: Float32Array, n: number, levels: number): Int32Array;
}

const DEFAULT_CHUNK = 8192;

function checkInput(shape: FFFShape, x: Float32Array, n: number): void {
  if (!Number.isInteger(n) || n < 0)
    throw new RangeError(`sample count must be a non-negative integer, got ${n}`);
  if (x.length < n * shape.inputWidth) {
    throw new RangeError(
      `input holds ${x.length} values, need ${n} x ${shape.inputWidth} = ${n * shape.inputWidth}`,
    );
  }
}

function checkWeights(weights: FFFWeights): void {
  const { depth, leafWidth, inputWidth, outputWidth, activation } = weights.shape;
  for (const [name, v] of Object.entries({ depth, leafWidth, inputWidth, outputWidth })) {
    if (!Number.isInteger(v) || v < (name === 'depth' ? 0 : 1))
      throw new RangeError(`invalid FFF ${name}: ${v}`);
  }
  if (depth > 24) throw new RangeError(`FFF depth ${depth} is too large for hard inference`);
  if (activation !== 'relu' && activation !== 'tanh')
    throw new RangeError(`unknown activation ${String(activation)}`);
  const t = weights.tensors;
  const N = nodeCount(depth);
  const Lc = leafCount(depth);
  const expected: [string, Float32Array, number][] = [
    ['nodes.weight', t['nodes.weight'], N * inputWidth],
    ['nodes.bias', t['nodes.bias'], N],
    ['leaves.w1', t['leaves.w1'], Lc * inputWidth * leafWidth],
    ['leaves.b1', t['leaves.b1'], Lc * leafWidth],
    ['leaves.w2', t['leaves.w2'], Lc * leafWidth * outputWidth],
    ['leaves.b2', t['leaves.b2'], Lc * outputWidth],
  ];
  for (const [name, arr, len] of expected) {
    if (arr.length !== len) throw new RangeError(`${name} has ${arr.length} values, expected ${len}`);
  }
}

// ---------------------------------------------------------------------------------------
// Reference implementation: plain loops, float64 accumulation, obviously correct.

/** Leaf index per sample by walking the tree; the simplest possible router (for tests). */
export function hardRouteReference(
  weights: FFFWeights,
  x: Float32Array,
  n: number,
  levels?: number,
): Int32Array {
  const { depth, inputWidth: I } = weights.shape;
  const lv = levels ?? depth;
  const w = weights.tensors['nodes.weight'];
  const b = weights.tensors['nodes.bias'];
  const out = new Int32Array(n);
  for (let s = 0; s < n; s++) {
    let node = 0;
    for (let d = 0; d < lv; d++) {
      let z = b[node]!;
      for (let i = 0; i < I; i++) z += w[node * I + i]! * x[s * I + i]!;
      node = z > 0 ? 2 * node + 2 : 2 * node + 1;
    }
    out[s] = node - (2 ** lv - 1);
  }
  return out;
}

/** Hard-inference logits [n, O] with straightforward loops (the test oracle). */
export function hardLogitsReference(weights: FFFWeights, x: Float32Array, n: number): Float32Array {
  checkWeights(weights);
  checkInput(weights.shape, x, n);
  const { inputWidth: I, leafWidth: L, outputWidth: O, activation } = weights.shape;
  const t = weights.tensors;
  const leaves = hardRouteReference(weights, x, n);
  const out = new Float32Array(n * O);
  const h = new Float64Array(L);
  for (let s = 0; s < n; s++) {
    const leaf = leaves[s]!;
    for (let l = 0; l < L; l++) {
      let z = t['leaves.b1'][leaf * L + l]!;
      for (let i = 0; i < I; i++) z += x[s * I + i]! * t['leaves.w1'][(leaf * I + i) * L + l]!;
      h[l] = activation === 'relu' ? Math.max(0, z) : Math.tanh(z);
    }
    for (let o = 0; o < O; o++) {
      let z = t['leaves.b2'][leaf * O + o]!;
      for (let l = 0; l < L; l++) z += h[l]! * t['leaves.w2'][(leaf * L + l) * O + o]!;
      out[s * O + o] = z;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Engines: where the arithmetic runs. Both follow the same chunk protocol:
//   load(x, start, n) -> routeSamples(n, levels) -> (orchestrator sorts `order` by leaf)
//   -> leafForward(leaf, from, count) per leaf -> logits rows.

interface Engine {
  readonly kernel: HardKernel;
  /** Make room for n samples and load rows [start, start+n) of x. */
  load(x: Float32Array, start: number, n: number): void;
  /** Node index within level `levels` (0..2^levels-1) per loaded sample; valid until next load. */
  routeSamples(n: number, levels: number): Int32Array;
  /** Loaded sample ids grouped by leaf: filled by the caller after routeSamples. */
  readonly order: Int32Array;
  /** Runs leaf `leaf` on samples order[from .. from+count), writing their rows of `logits`. */
  leafForward(leaf: number, from: number, count: number): void;
  /** logits[s * logitStride + o] for loaded sample s. */
  readonly logits: Float32Array;
  readonly logitStride: number;
}

/** Hidden units padded to a multiple of 4 (zero weights in the padding). */
const paddedLeafWidth = (L: number): number => Math.ceil(L / 4) * 4;

class JsEngine implements Engine {
  readonly kernel = 'js' as const;
  order = new Int32Array(0);
  logits = new Float32Array(0);
  readonly logitStride: number;
  private leafOf = new Int32Array(0);
  private x: Float32Array = new Float32Array(0);
  private xStart = 0;
  private readonly shape: FFFShape;
  private readonly Lp: number;
  private readonly nodeW: Float32Array;
  private readonly nodeB: Float32Array;
  /** [leaf][Lp][I]: W1 transposed, padding rows zero. */
  private readonly w1t: Float32Array;
  private readonly b1: Float32Array;
  private readonly w2: Float32Array;
  private readonly b2: Float32Array;
  private readonly h: Float64Array;
  private readonly acc: Float64Array;

  constructor(weights: FFFWeights) {
    this.shape = { ...weights.shape };
    const { depth, inputWidth: I, leafWidth: L, outputWidth: O } = weights.shape;
    const t = weights.tensors;
    this.logitStride = O;
    this.Lp = paddedLeafWidth(L);
    this.nodeW = t['nodes.weight'].slice();
    this.nodeB = t['nodes.bias'].slice();
    this.b1 = t['leaves.b1'].slice();
    this.w2 = t['leaves.w2'].slice();
    this.b2 = t['leaves.b2'].slice();
    this.h = new Float64Array(this.Lp);
    this.acc = new Float64Array(O);
    const leaves = leafCount(depth);
    const Lp = this.Lp;
    this.w1t = new Float32Array(leaves * Lp * I);
    const w1 = t['leaves.w1'];
    for (let leaf = 0; leaf < leaves; leaf++) {
      for (let i = 0; i < I; i++) {
        for (let l = 0; l < L; l++) this.w1t[(leaf * Lp + l) * I + i] = w1[(leaf * I + i) * L + l]!;
      }
    }
  }

  load(x: Float32Array, start: number, n: number): void {
    if (this.order.length < n) {
      this.order = new Int32Array(n);
      this.leafOf = new Int32Array(n);
      this.logits = new Float32Array(n * this.logitStride);
    }
    this.x = x;
    this.xStart = start;
  }

  routeSamples(n: number, levels: number): Int32Array {
    const I = this.shape.inputWidth;
    const I4 = I - (I % 4);
    const { x, nodeW, nodeB, leafOf } = this;
    const first = 2 ** levels - 1;
    for (let s = 0; s < n; s++) {
      const xo = (this.xStart + s) * I;
      let node = 0;
      for (let d = 0; d < levels; d++) {
        const wo = node * I;
        let a0 = 0,
          a1 = 0,
          a2 = 0,
          a3 = 0;
        let i = 0;
        for (; i < I4; i += 4) {
          a0 += nodeW[wo + i]! * x[xo + i]!;
          a1 += nodeW[wo + i + 1]! * x[xo + i + 1]!;
          a2 += nodeW[wo + i + 2]! * x[xo + i + 2]!;
          a3 += nodeW[wo + i + 3]! * x[xo + i + 3]!;
        }
        for (; i < I; i++) a0 += nodeW[wo + i]! * x[xo + i]!;
        node = a0 + a1 + (a2 + a3) + nodeB[node]! > 0 ? 2 * node + 2 : 2 * node + 1;
      }
      leafOf[s] = node - first;
    }
    return leafOf;
  }

  leafForward(leaf: number, from: number, count: number): void {
    const { inputWidth: I, leafWidth: L, outputWidth: O, activation } = this.shape;
    const { x, w1t, order, Lp, h, acc, b1, w2, b2, logits } = this;
    const relu = activation === 'relu';
    for (let k = from; k < from + count; k++) {
      const sample = order[k]!;
      const xo = (this.xStart + sample) * I;
      for (let r = 0; r < Lp; r += 4) {
        const w0 = (leaf * Lp + r) * I;
        const w1 = w0 + I,
          w2r = w1 + I,
          w3 = w2r + I;
        let a0 = 0,
          a1 = 0,
          a2 = 0,
          a3 = 0;
        for (let i = 0; i < I; i++) {
          const xi = x[xo + i]!;
          a0 += xi * w1t[w0 + i]!;
          a1 += xi * w1t[w1 + i]!;
          a2 += xi * w1t[w2r + i]!;
          a3 += xi * w1t[w3 + i]!;
        }
        h[r] = a0;
        h[r + 1] = a1;
        h[r + 2] = a2;
        h[r + 3] = a3;
      }
      for (let l = 0; l < L; l++) {
        const z = h[l]! + b1[leaf * L + l]!;
        h[l] = relu ? (z > 0 ? z : 0) : Math.tanh(z);
      }
      for (let o = 0; o < O; o++) acc[o] = b2[leaf * O + o]!;
      for (let l = 0; l < L; l++) {
        const hl = h[l]!;
        if (hl === 0) continue;
        const wr = (leaf * L + l) * O;
        for (let o = 0; o < O; o++) acc[o] = acc[o]! + hl * w2[wr + o]!;
      }
      for (let o = 0; o < O; o++) logits[sample * O + o] = acc[o]!;
    }
  }
}

/**
 * Wasm memory layout (bytes, all 16-aligned):
 *   weights, packed once: node rows [N][Ip] | node bias [N] | W1 [leaf][Lp/4][Ip/4][4][4]
 *     | b1 [leaf][Lp] | W2 [leaf][Lp][Op] | b2 [leaf][Op] | zeros [Lp]
 *   per chunk: x rows [cap][Ip] | leafOf [cap] | order [cap] | hidden [cap][Lp] | logits [cap][Op]
 * Ip = I padded to a multiple of 16, Lp = L to 4, Op = O to 4; padding is zero.
 */
class WasmEngine implements Engine {
  readonly kernel = 'wasm-simd' as const;
  order = new Int32Array(0);
  logits = new Float32Array(0);
  readonly logitStride: number;
  private leafOf = new Int32Array(0);
  private hidden = new Float32Array(0);
  private heap = new Float32Array(0);
  private readonly k: WasmKernels;
  private readonly shape: FFFShape;
  private readonly Ip: number;
  private readonly Lp: number;
  private readonly rowBytes: number;
  private readonly off: {
    nodes: number;
    bias: number;
    w1: number;
    b1: number;
    w2: number;
    b2: number;
    zeros: number;
    dyn: number;
  };
  private readonly w1LeafBytes: number;
  private capacity = 0;
  private xOff = 0;
  private leafOfOff = 0;
  private orderOff = 0;
  private hiddenOff = 0;
  private logitsOff = 0;

  constructor(weights: FFFWeights) {
    this.shape = { ...weights.shape };
    const { depth, inputWidth: I, leafWidth: L, outputWidth: O } = weights.shape;
    const t = weights.tensors;
    const Ip = (this.Ip = Math.max(16, Math.ceil(I / 16) * 16));
    const Lp = (this.Lp = paddedLeafWidth(L));
    const Op = (this.logitStride = Math.ceil(O / 4) * 4);
    this.rowBytes = Ip * 4;
    const N = nodeCount(depth);
    const leaves = leafCount(depth);
    const al = (bytes: number): number => Math.ceil(bytes / 16) * 16;
    this.w1LeafBytes = Lp * this.rowBytes;
    const nodes = 0;
    const bias = nodes + N * this.rowBytes;
    const w1 = bias + al(N * 4);
    const b1 = w1 + leaves * this.w1LeafBytes;
    const w2 = b1 + leaves * Lp * 4;
    const b2 = w2 + leaves * Lp * Op * 4;
    const zeros = b2 + leaves * Op * 4;
    const dyn = zeros + Lp * 4;
    this.off = { nodes, bias, w1, b1, w2, b2, zeros, dyn };
    this.k = instantiateKernels(dyn);
    const heap = new Float32Array(this.k.memory.buffer);
    const nw = t['nodes.weight'];
    for (let node = 0; node < N; node++) heap.set(nw.subarray(node * I, (node + 1) * I), node * Ip);
    heap.set(t['nodes.bias'], bias / 4);
    const w1t = t['leaves.w1'];
    const chunks = Ip / 4;
    for (let leaf = 0; leaf < leaves; leaf++) {
      const base = (w1 + leaf * this.w1LeafBytes) / 4;
      for (let l = 0; l < L; l++) {
        const bk = l >> 2;
        const u = l & 3;
        for (let i = 0; i < I; i++) {
          heap[base + ((bk * chunks + (i >> 2)) * 4 + u) * 4 + (i & 3)] = w1t[(leaf * I + i) * L + l]!;
        }
      }
      for (let l = 0; l < L; l++) {
        heap[b1 / 4 + leaf * Lp + l] = t['leaves.b1'][leaf * L + l]!;
        for (let o = 0; o < O; o++)
          heap[w2 / 4 + (leaf * Lp + l) * Op + o] = t['leaves.w2'][(leaf * L + l) * O + o]!;
      }
      for (let o = 0; o < O; o++) heap[b2 / 4 + leaf * Op + o] = t['leaves.b2'][leaf * O + o]!;
    }
  }

  private reserve(n: number): void {
    if (n <= this.capacity) return;
    const cap = Math.ceil(Math.max(n, 64) / 4) * 4;
    const xOff = this.off.dyn;
    const leafOfOff = xOff + cap * this.rowBytes;
    const orderOff = leafOfOff + cap * 4;
    const hiddenOff = orderOff + cap * 4;
    const logitsOff = hiddenOff + cap * this.Lp * 4;
    const end = logitsOff + cap * this.logitStride * 4;
    const mem = this.k.memory;
    if (end > mem.buffer.byteLength) mem.grow(Math.ceil((end - mem.buffer.byteLength) / 65536));
    const buffer = mem.buffer;
    this.heap = new Float32Array(buffer);
    // padding columns of the x rows must be zero; the region may hold older buffers
    this.heap.fill(0, xOff / 4, leafOfOff / 4);
    this.leafOf = new Int32Array(buffer, leafOfOff, cap);
    this.order = new Int32Array(buffer, orderOff, cap);
    this.hidden = new Float32Array(buffer, hiddenOff, cap * this.Lp);
    this.logits = new Float32Array(buffer, logitsOff, cap * this.logitStride);
    this.xOff = xOff;
    this.leafOfOff = leafOfOff;
    this.orderOff = orderOff;
    this.hiddenOff = hiddenOff;
    this.logitsOff = logitsOff;
    this.capacity = cap;
  }

  load(x: Float32Array, start: number, n: number): void {
    this.reserve(n);
    const { Ip, heap } = this;
    const I = this.shape.inputWidth;
    const base = this.xOff / 4;
    if (I === Ip) heap.set(x.subarray(start * I, (start + n) * I), base);
    else
      for (let s = 0; s < n; s++) heap.set(x.subarray((start + s) * I, (start + s + 1) * I), base + s * Ip);
  }

  routeSamples(n: number, levels: number): Int32Array {
    this.k.routeSamples(this.off.nodes, this.off.bias, this.xOff, n, levels, this.leafOfOff, this.rowBytes);
    return this.leafOf;
  }

  leafForward(leaf: number, from: number, count: number): void {
    const { Lp, k, off } = this;
    const hiddenAt = this.hiddenOff + from * Lp * 4;
    k.leafHidden(
      off.w1 + leaf * this.w1LeafBytes,
      Lp / 4,
      this.xOff,
      this.orderOff + from * 4,
      count,
      hiddenAt,
      this.rowBytes,
    );
    const relu = this.shape.activation === 'relu';
    let b1 = off.b1 + leaf * Lp * 4;
    if (!relu) {
      // tanh has no wasm instruction: apply b1 and tanh here, then run layer 2 with zero b1
      const L = this.shape.leafWidth;
      const hidden = this.hidden;
      const b1v = this.heap.subarray(b1 / 4, b1 / 4 + L);
      for (let q = from; q < from + count; q++) {
        for (let l = 0; l < L; l++) hidden[q * Lp + l] = Math.tanh(hidden[q * Lp + l]! + b1v[l]!);
      }
      b1 = off.zeros;
    }
    const Op = this.logitStride;
    k.leafOut(
      hiddenAt,
      b1,
      off.w2 + leaf * Lp * Op * 4,
      off.b2 + leaf * Op * 4,
      this.orderOff + from * 4,
      count,
      this.logitsOff,
      Lp,
      Op / 4,
      relu ? 1 : 0,
    );
  }
}

// ---------------------------------------------------------------------------------------
// The model: route, group by leaf (counting sort), run each leaf once on its samples.

class CompiledModel implements HardInferenceModel {
  readonly shape: FFFShape;
  readonly kernel: HardKernel;
  private readonly engine: Engine;
  private readonly chunk: number;
  private readonly starts: Int32Array;

  constructor(weights: FFFWeights, engine: Engine, chunk: number) {
    this.shape = { ...weights.shape };
    this.engine = engine;
    this.kernel = engine.kernel;
    this.chunk = chunk;
    this.starts = new Int32Array(leafCount(weights.shape.depth) + 1);
  }

  private checkLevels(levels: number): void {
    if (!Number.isInteger(levels) || levels < 0 || levels > this.shape.depth) {
      throw new RangeError(`levels must be an integer in [0, ${this.shape.depth}], got ${levels}`);
    }
  }

  routeToDepth(x: Float32Array, n: number, levels: number): Int32Array {
    checkInput(this.shape, x, n);
    this.checkLevels(levels);
    const out = new Int32Array(n);
    for (let start = 0; start < n; start += this.chunk) {
      const m = Math.min(this.chunk, n - start);
      this.engine.load(x, start, m);
      out.set(this.engine.routeSamples(m, levels).subarray(0, m), start);
    }
    return out;
  }

  route(x: Float32Array, n: number): Int32Array {
    return this.routeToDepth(x, n, this.shape.depth);
  }

  predictLogits(x: Float32Array, n: number): Float32Array {
    checkInput(this.shape, x, n);
    const { depth, outputWidth: O } = this.shape;
    const leaves = leafCount(depth);
    const out = new Float32Array(n * O);
    const e = this.engine;
    const starts = this.starts;
    for (let start = 0; start < n; start += this.chunk) {
      const m = Math.min(this.chunk, n - start);
      e.load(x, start, m);
      const leafOf = e.routeSamples(m, depth);
      // counting sort of the samples by leaf: starts[t]..starts[t+1] are leaf t's positions
      starts.fill(0);
      for (let s = 0; s < m; s++) starts[leafOf[s]! + 1]!++;
      for (let t = 0; t < leaves; t++) starts[t + 1]! += starts[t]!;
      const order = e.order;
      for (let s = 0; s < m; s++) order[starts[leafOf[s]!]!++] = s;
      // starts[t] now holds the end of leaf t
      let from = 0;
      for (let t = 0; t < leaves; t++) {
        const end = starts[t]!;
        if (end > from) e.leafForward(t, from, end - from);
        from = end;
      }
      const stride = e.logitStride;
      const logits = e.logits;
      if (stride === O) out.set(logits.subarray(0, m * O), start * O);
      else {
        for (let s = 0; s < m; s++) {
          const src = s * stride;
          const dst = (start + s) * O;
          for (let o = 0; o < O; o++) out[dst + o] = logits[src + o]!;
        }
      }
    }
    return out;
  }

  predictClasses(x: Float32Array, n: number): Int32Array {
    const O = this.shape.outputWidth;
    const logits = this.predictLogits(x, n);
    const out = new Int32Array(n);
    for (let s = 0; s < n; s++) {
      let best = 0;
      let bestValue = logits[s * O]!;
      for (let o = 1; o < O; o++) {
        const v = logits[s * O + o]!;
        if (v > bestValue) {
          bestValue = v;
          best = o;
        }
      }
      out[s] = best;
    }
    return out;
  }
}

/** Packs `weights` once into a fast hard-inference model (a snapshot: later edits are not seen). */
export function compileHardInference(
  weights: FFFWeights,
  options: HardInferenceOptions = {},
): HardInferenceModel {
  checkWeights(weights);
  const choice = options.kernel ?? 'auto';
  const chunk = options.chunkSize ?? DEFAULT_CHUNK;
  if (!Number.isInteger(chunk) || chunk < 1)
    throw new RangeError(`chunkSize must be a positive integer, got ${chunk}`);
  let engine: Engine;
  if (choice === 'js' || (choice === 'auto' && !wasmSimdSupported())) engine = new JsEngine(weights);
  else engine = new WasmEngine(weights);
  return new CompiledModel(weights, engine, chunk);
}
