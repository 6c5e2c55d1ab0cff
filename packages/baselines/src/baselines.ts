import { PrimerError, createRegistry, type Registry } from '@primer-search/core';
import { DnaBuilder, type Dna } from '@primer-search/dna';
import { feedForward, multiHeadAttention, norm, type FeedForwardOptions, type Norm } from './blocks.js';

export interface BaselineOptions {
  /** The model width the DNA is written for: it sets the attention scale 1/sqrt(dModel / heads). */
  dModel: number;
  /** Attention heads: 1, 2, 4 or 8 (heads of 8/heads units). Default 4. */
  heads?: number;
}

export interface Baseline {
  name: string;
  title: string;
  /** One paragraph: what the model is and how this DNA writes it. */
  description: string;
  build(options: BaselineOptions): Dna;
}

export type BaselineName = 'vanilla' | 'gelu' | 'transformer++' | 'primer-ez' | 'primer';

function attentionSettings(o: BaselineOptions) {
  const heads = o.heads ?? 4;
  if (![1, 2, 4, 8].includes(heads)) throw new PrimerError('BAD_OPTION', `heads must be 1, 2, 4 or 8, got ${heads}`);
  if (!Number.isInteger(o.dModel) || o.dModel % 16 !== 0 || o.dModel <= 0) {
    throw new PrimerError('BAD_OPTION', `dModel must be a positive multiple of 16, got ${o.dModel}`);
  }
  return { heads: heads as 1 | 2 | 4 | 8, scale: Math.fround(1 / Math.sqrt(o.dModel / heads)) };
}

interface Recipe {
  norm: Norm;
  ffn: FeedForwardOptions;
  dconv: boolean;
  sharedQk: boolean;
  /** Where the FFN sublayer's norm sits: before it (pre) or after the residual (post). */
  ffnNorm: 'pre' | 'post';
}

/** Pre-norm residual block; with `ffnNorm: 'post'`, the FFN sublayer is post-norm (Primer). */
function transformer(name: string, recipe: Recipe, o: BaselineOptions): Dna {
  const b = new DnaBuilder(name);
  const attn = multiHeadAttention(b, { ...attentionSettings(o), dconv: recipe.dconv, sharedQk: recipe.sharedQk });
  const ffn = feedForward(b, recipe.ffn);
  const n = norm(b, recipe.norm);
  b.main((s, x) => {
    const a = s.op('ADD', x, s.call(attn, s.call(n, x)));
    return recipe.ffnNorm === 'pre' ? s.op('ADD', a, s.call(ffn, s.call(n, a))) : s.call(n, s.op('ADD', a, s.call(ffn, a)));
  });
  return b.build();
}

const vanillaRecipe: Recipe = {
  norm: 'layer',
  ffn: { activation: 'relu', hidden: 32, bias: true },
  dconv: false,
  sharedQk: false,
  ffnNorm: 'pre',
};

export const builtinBaselines: Baseline[] = [
  {
    name: 'vanilla',
    title: 'Vanilla Transformer',
    description:
      'Pre-norm decoder block: layer norm, multi-head causal attention, residual; layer norm, ReLU feed-forward (4 x dModel, with biases), residual. The seed of the search.',
    build: (o) => transformer('vanilla', vanillaRecipe, o),
  },
  {
    name: 'gelu',
    title: 'Transformer+GELU',
    description: 'Vanilla with GELU (tanh approximation) instead of ReLU in the feed-forward.',
    build: (o) => transformer('gelu', { ...vanillaRecipe, ffn: { ...vanillaRecipe.ffn, activation: 'gelu' } }, o),
  },
  {
    name: 'transformer++',
    title: 'Transformer++',
    description:
      'RMSNorm instead of layer norm and a SwiGLU feed-forward without biases. The paper reduces d_ff to match parameters: 8/3 x dModel is not a width the DNA can express, so this uses 3 x dModel (24u), about 12% more feed-forward parameters than vanilla.',
    build: (o) => transformer('transformer++', { ...vanillaRecipe, norm: 'rms', ffn: { activation: 'swiglu', hidden: 24, bias: false } }, o),
  },
  {
    name: 'primer-ez',
    title: 'Primer-EZ',
    description:
      'Vanilla plus the two changes the paper recommends: squared ReLU in the feed-forward, and multi-DConv-head attention (a causal width-3 depthwise convolution after each Q, K and V projection, initialised 0.5 / 0.5/3 / 0.5/3).',
    build: (o) => transformer('primer-ez', { ...vanillaRecipe, ffn: { ...vanillaRecipe.ffn, activation: 'squared-relu' }, dconv: true }, o),
  },
  {
    name: 'primer',
    title: 'Primer',
    description:
      "Primer-EZ plus: a shared Q/K projection and depthwise convolution with an extra Q-only projection (K = dconv(x Wqk), Q = K Wq), Primer's norm ((x - mean) / sqrt(mean(x (x - mean)) + eps)), and alternating norm placement: the attention sublayer is pre-norm, the feed-forward sublayer post-norm.",
    build: (o) =>
      transformer(
        'primer',
        { norm: 'primer', ffn: { activation: 'squared-relu', hidden: 32, bias: true }, dconv: true, sharedQk: true, ffnNorm: 'post' },
        o,
      ),
  },
];

export type BaselineRegistry = Registry<BaselineName, Baseline>;

/** The shared baseline registry; plugins may add their own models by name. */
export const baselines: BaselineRegistry = createRegistry<BaselineName, Baseline>('baseline', {
  validate: (name, b) => (b.name !== name ? `the entry's name "${b.name}" differs from the registered name` : undefined),
});
for (const b of builtinBaselines) baselines.register(b.name, b);

/** The DNA of a registered baseline at a model width. */
export function baselineDna(name: string, options: BaselineOptions): Dna {
  return baselines.get(name).build(options);
}
