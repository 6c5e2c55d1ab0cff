import { glorot, RowsInitializer } from './init.js';
import { causalAttention, causalDepthwiseConv, dense, mergeHeads, splitHeads } from './ops.js';
import { single, singleShape, tf, type BaseLayerArgs, type LayerVariable, type Shape, type Tensor } from './tf.js';

/** max(x, 0)^2: the feed-forward activation the Primer search found. */
export class SquaredReLU extends tf.layers.Layer {
  static className = 'SquaredReLU';
  constructor(args: BaseLayerArgs = {}) {
    super(args);
    this.supportsMasking = true;
  }
  override call(inputs: Tensor | Tensor[]): Tensor {
    return tf.tidy(() => tf.square(tf.relu(single(inputs))));
  }
}
tf.serialization.registerClass(SquaredReLU);

/** The released initialisation of MDHA's depthwise kernels: 0.5 at lag 0, 0.5/3 at lags 1 and 2. */
export const DCONV_INIT_ROWS = [0.5, 0.5 / 3, 0.5 / 3];
export const DCONV_WIDTH = 3;

export interface AttentionSettings {
  /** Attention heads. Default 4. */
  heads?: number;
  /** Features per head of the queries, keys and values. Default: the model width / heads. */
  keyWidth?: number;
  /** Multi-DConv-head attention: a causal width-3 depthwise convolution after each of the Q, K and V projections. Default true. */
  dconv?: boolean;
  /** Primer's shared Q/K: K = dconv(x Wk), Q = K Wq (a per-head `[keyWidth, keyWidth]` projection of K, no convolution of its own). Default false. */
  sharedQk?: boolean;
}

export interface ResolvedAttention {
  heads: number;
  keyWidth: number;
  dconv: boolean;
  sharedQk: boolean;
}

export function resolveAttention(s: AttentionSettings, dModel: number, where: string): ResolvedAttention {
  const heads = s.heads ?? 4;
  if (!Number.isInteger(heads) || heads < 1) throw new Error(`${where}: heads must be a positive integer, got ${heads}`);
  const keyWidth = s.keyWidth ?? dModel / heads;
  if (!Number.isInteger(keyWidth) || keyWidth < 1) {
    throw new Error(`${where}: keyWidth must be a positive integer (the default, model width ${dModel} / ${heads} heads, is not one: give keyWidth)`);
  }
  return { heads, keyWidth, dconv: s.dconv ?? true, sharedQk: s.sharedQk ?? false };
}

/** The weights of one attention sublayer, created on `layer` with names prefixed by `prefix`. */
export interface AttentionWeights {
  q: LayerVariable;
  k: LayerVariable;
  v: LayerVariable;
  qConv?: LayerVariable;
  kConv?: LayerVariable;
  vConv?: LayerVariable;
  out: LayerVariable;
}

type WeightAdder = (name: string, shape: number[], init: ReturnType<typeof glorot>) => LayerVariable;

/**
 * Creates the attention weights: Q/K/V projections `[dModel, heads * keyWidth]` (heads side by
 * side; shared Q/K's Q is `[heads, keyWidth, keyWidth]`), depthwise kernels `[3, heads *
 * keyWidth]` (row i weights position t - i), output projection `[heads * keyWidth, dModel]`.
 * Projections are Glorot uniform per head, as the compiled blocks.
 */
export function addAttentionWeights(add: WeightAdder, prefix: string, a: ResolvedAttention, dModel: number): AttentionWeights {
  const all = a.heads * a.keyWidth;
  const conv = (name: string) => (a.dconv ? add(`${prefix}${name}`, [DCONV_WIDTH, all], new RowsInitializer({ rows: DCONV_INIT_ROWS })) : undefined);
  const k = add(`${prefix}k`, [dModel, all], glorot(dModel, a.keyWidth));
  const kConv = conv('k_conv');
  const q = a.sharedQk ? add(`${prefix}q`, [a.heads, a.keyWidth, a.keyWidth], glorot(a.keyWidth, a.keyWidth)) : add(`${prefix}q`, [dModel, all], glorot(dModel, a.keyWidth));
  const qConv = a.sharedQk ? undefined : conv('q_conv');
  const v = add(`${prefix}v`, [dModel, all], glorot(dModel, a.keyWidth));
  const vConv = conv('v_conv');
  const out = add(`${prefix}out`, [all, dModel], glorot(all, dModel));
  return { q, k, v, qConv, kConv, vConv, out };
}

/** `[b, h, s, w] @ [h, w, w]`, head by head (as one product over `[h, b * s, w]`: tfjs has no gradient for a broadcast batch). */
function perHead(x: Tensor, w: Tensor): Tensor {
  const [b, h, s, kw] = x.shape as [number, number, number, number];
  const byHead = tf.reshape(tf.transpose(x, [1, 0, 2, 3]), [h, b * s, kw]);
  return tf.transpose(tf.reshape(tf.matMul(byHead, w), [h, b, s, kw]), [1, 0, 2, 3]);
}

/** Causal multi-head attention of `x` `[b, s, dModel]` with these weights. */
export function attend(x: Tensor, w: AttentionWeights, a: ResolvedAttention): Tensor {
  const conv = (t: Tensor, kernel?: LayerVariable) => (kernel ? causalDepthwiseConv(t, kernel.read()) : t);
  const k = splitHeads(conv(dense(x, w.k.read()), w.kConv), a.heads);
  // shared Q/K: each head's Q is its K times its own [keyWidth, keyWidth] projection
  const q = a.sharedQk ? perHead(k, w.q.read()) : splitHeads(conv(dense(x, w.q.read()), w.qConv), a.heads);
  const v = splitHeads(conv(dense(x, w.v.read()), w.vConv), a.heads);
  return dense(mergeHeads(causalAttention(q, k, v, 1 / Math.sqrt(a.keyWidth))), w.out.read());
}

export interface MultiDConvHeadAttentionArgs extends BaseLayerArgs, AttentionSettings {}

/**
 * Primer's multi-DConv-head attention (MDHA) as a layer: causal multi-head self-attention with a
 * causal width-3 depthwise convolution after each of the Q, K and V projections (with `dconv:
 * false`, plain causal multi-head attention). `[batch, seq, dModel]` -> `[batch, seq, dModel]`.
 */
export class MultiDConvHeadAttention extends tf.layers.Layer {
  static className = 'MultiDConvHeadAttention';
  private readonly settings: AttentionSettings;
  private resolved?: ResolvedAttention;
  private w?: AttentionWeights;

  constructor(args: MultiDConvHeadAttentionArgs = {}) {
    super(args);
    const { heads, keyWidth, dconv, sharedQk } = args;
    this.settings = { heads, keyWidth, dconv, sharedQk };
  }

  override build(inputShape: Shape | Shape[]): void {
    const dModel = checkModelInput(singleShape(inputShape), this.name);
    this.resolved = resolveAttention(this.settings, dModel, this.name);
    this.w = addAttentionWeights((n, s, i) => this.addWeight(n, s, 'float32', i), '', this.resolved, dModel);
    this.built = true;
  }

  override call(inputs: Tensor | Tensor[]): Tensor {
    return tf.tidy(() => attend(single(inputs), this.w!, this.resolved!));
  }

  override getConfig() {
    return { ...super.getConfig(), ...definedOnly(this.settings) };
  }
}
tf.serialization.registerClass(MultiDConvHeadAttention);

/** The model width of a `[batch, seq, dModel]` input shape. */
export function checkModelInput(shape: Shape, layer: string): number {
  const d = shape[shape.length - 1];
  if (shape.length !== 3 || typeof d !== 'number') {
    throw new Error(`${layer}: expects inputs [batch, seq, dModel] with a known dModel, got [${shape.map((x) => x ?? 'null').join(', ')}]`);
  }
  return d;
}

export function definedOnly<T extends object>(o: T): Record<string, string | number | boolean> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
