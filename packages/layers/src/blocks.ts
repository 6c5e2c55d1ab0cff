import { addAttentionWeights, attend, checkModelInput, definedOnly, resolveAttention, type AttentionSettings, type AttentionWeights, type ResolvedAttention } from './attention.js';
import { glorot } from './init.js';
import { activate, dense, layerNorm, primerNorm, type Activation } from './ops.js';
import { single, singleShape, tf, type BaseLayerArgs, type LayerVariable, type Shape, type Tensor } from './tf.js';

export type NormKind = 'layer' | 'primer';

/** How a decoder block is put together. Every block layer is one of these recipes. */
export interface BlockRecipe extends AttentionSettings {
  /** Feed-forward activation. */
  activation?: Activation;
  /** Feed-forward hidden width. Default 4 x dModel. */
  ffnWidth?: number;
  /** Layer norm, or Primer's norm ((x - mean) / sqrt(mean(x (x - mean)) + eps)). */
  norm?: NormKind;
  /** The feed-forward sublayer's norm before it (pre-norm) or after its residual (post-norm, as Primer). */
  ffnNorm?: 'pre' | 'post';
}

export interface BlockArgs extends BaseLayerArgs, BlockRecipe {}

interface NormWeights {
  scale: LayerVariable;
  shift: LayerVariable;
}

/**
 * A residual decoder block, `[batch, seq, dModel]` -> the same:
 * pre-norm: `a = x + attention(norm(x)); y = a + ffn(norm(a))`;
 * post-norm feed-forward (Primer): `a = x + attention(norm(x)); y = norm(a + ffn(a))`.
 * The feed-forward is `act(x W1 + b1) W2 + b2`. Weight names: `norm1/scale`, `attention/q`, ...
 */
export class DecoderBlock extends tf.layers.Layer {
  static className = 'PrimerDecoderBlock';
  protected readonly recipe: BlockRecipe;
  private attention?: ResolvedAttention;
  private w?: { norm1: NormWeights; norm2: NormWeights; attention: AttentionWeights; w1: LayerVariable; b1: LayerVariable; w2: LayerVariable; b2: LayerVariable };

  constructor(args: BlockArgs, defaults: BlockRecipe) {
    super(args);
    const { heads, keyWidth, dconv, sharedQk, activation, ffnWidth, norm, ffnNorm } = args;
    this.recipe = { ...defaults, ...definedOnly({ heads, keyWidth, dconv, sharedQk, activation, ffnWidth, norm, ffnNorm }) } as BlockRecipe;
  }

  override build(inputShape: Shape | Shape[]): void {
    const d = checkModelInput(singleShape(inputShape), this.name);
    const r = this.recipe;
    this.attention = resolveAttention(r, d, this.name);
    const hidden = r.ffnWidth ?? 4 * d;
    const add = (n: string, s: number[], i: ReturnType<typeof glorot>) => this.addWeight(n, s, 'float32', i);
    const norm = (p: string): NormWeights => ({ scale: add(`${p}/scale`, [d], tf.initializers.ones()), shift: add(`${p}/shift`, [d], tf.initializers.zeros()) });
    this.w = {
      norm1: norm('norm1'),
      attention: addAttentionWeights(add, 'attention/', this.attention, d),
      norm2: norm('norm2'),
      w1: add('ffn/w1', [d, hidden], glorot(d, hidden)),
      b1: add('ffn/b1', [hidden], tf.initializers.zeros()),
      w2: add('ffn/w2', [hidden, d], glorot(hidden, d)),
      b2: add('ffn/b2', [d], tf.initializers.zeros()),
    };
    this.built = true;
  }

  override call(inputs: Tensor | Tensor[]): Tensor {
    return tf.tidy(() => {
      const x = single(inputs);
      const w = this.w!;
      const normFn = this.recipe.norm === 'primer' ? primerNorm : layerNorm;
      const norm = (t: Tensor, n: NormWeights) => normFn(t, n.scale.read(), n.shift.read());
      const ffn = (t: Tensor) => tf.add(dense(activate(tf.add(dense(t, w.w1.read()), w.b1.read()), this.recipe.activation ?? 'relu'), w.w2.read()), w.b2.read());
      const a = tf.add(x, attend(norm(x, w.norm1), w.attention, this.attention!));
      return this.recipe.ffnNorm === 'post' ? norm(tf.add(a, ffn(a)), w.norm2) : tf.add(a, ffn(norm(a, w.norm2)));
    });
  }

  override getConfig() {
    return { ...super.getConfig(), ...definedOnly(this.recipe) };
  }
}

/** The vanilla Transformer decoder block (pre-norm, ReLU feed-forward, plain attention); `activation`, `dconv` and the rest may be set for ablations. */
export class TransformerBlock extends DecoderBlock {
  static override className = 'TransformerBlock';
  constructor(args: BlockArgs = {}) {
    super(args, { activation: 'relu', dconv: false, sharedQk: false, norm: 'layer', ffnNorm: 'pre' });
  }
}

/** Primer-EZ: the vanilla block with squared ReLU and multi-DConv-head attention, the two changes the paper recommends. */
export class PrimerEZBlock extends DecoderBlock {
  static override className = 'PrimerEZBlock';
  constructor(args: BlockArgs = {}) {
    super(args, { activation: 'squared-relu', dconv: true, sharedQk: false, norm: 'layer', ffnNorm: 'pre' });
  }
}

/** Primer: Primer-EZ plus shared Q/K with its own Q projection, Primer's norm, and a post-norm feed-forward sublayer. */
export class PrimerBlock extends DecoderBlock {
  static override className = 'PrimerBlock';
  constructor(args: BlockArgs = {}) {
    super(args, { activation: 'squared-relu', dconv: true, sharedQk: true, norm: 'primer', ffnNorm: 'post' });
  }
}

for (const c of [TransformerBlock, PrimerEZBlock, PrimerBlock]) tf.serialization.registerClass(c);
