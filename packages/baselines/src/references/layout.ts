// Where a compiled baseline block keeps each weight of its hand-written reference: reads a
// compiled block's variables (by the compiler's parameter paths) into the references' weight
// structures, so tests can run both on identical weights.
import type { Tensor } from '@primer-search/primitives';
import type { AttentionWeights, FeedForwardWeights, NormWeights } from './common.js';
import type { TransformerPlusPlusWeights } from './transformer-plus-plus.js';
import type { VanillaWeights } from './vanilla.js';

/** What the layout reads of a compiled block: its variables by parameter path. */
export interface BlockVariables {
  variables: Map<string, Tensor>;
}

/** Parameters of `op` directly under `prefix` (one call level), in state order. */
function params(block: BlockVariables, prefix: string, op: string): Tensor[] {
  const re = new RegExp(`^${prefix.replace(/[[\]+]/g, '\\$&')}h(\\d+)(\\[\\d+\\])?:${op}\\.`);
  return [...block.variables]
    .filter(([name]) => re.test(name))
    .sort(([a], [b]) => Number(re.exec(a)![1]) - Number(re.exec(b)![1]))
    .map(([, v]) => v);
}

function normWeights(block: BlockVariables, prefix: string): NormWeights {
  const [scale] = params(block, prefix, 'SCALE');
  const [shift] = params(block, prefix, 'SHIFT');
  return { scale: scale!, shift };
}

function attentionWeights(block: BlockVariables, prefix: string, o: { sharedQk: boolean; heads: number }): AttentionWeights {
  const heads = Array.from({ length: o.heads }, (_, i) => {
    const head = `${prefix}h2[${i}]:attention_head/`;
    const proj = params(block, head, 'CONV_1X1');
    const conv = params(block, head, 'DCONV_3X1');
    // state order: shared Q/K writes K (and its dconv) first, then Q from K, then V
    const [q, k, v] = o.sharedQk ? [proj[1]!, proj[0]!, proj[2]!] : [proj[0]!, proj[1]!, proj[2]!];
    const [qConv, kConv, vConv] = o.sharedQk ? [undefined, conv[0], conv[1]] : [conv[0], conv[1], conv[2]];
    return { q, k, v, qConv, kConv, vConv };
  });
  const [out] = params(block, prefix, 'CONV_1X1');
  return { heads, out: out! };
}

function ffnWeights(block: BlockVariables, prefix: string): FeedForwardWeights {
  const [w1, w2] = params(block, prefix, 'CONV_1X1');
  const [b1, b2] = params(block, prefix, 'SHIFT');
  return { w1: w1!, w2: w2!, b1, b2 };
}

/**
 * The weights of a compiled vanilla, gelu, primer-ez or primer block (`heads` heads) in the
 * references' structure. Pre-norm: h1 = norm(x), h2 = attention, h4 = norm(a), h5 = ffn;
 * Primer: h4 = ffn(a), h6 = norm(a + ffn).
 */
export function baselineWeights(block: BlockVariables, baseline: 'vanilla' | 'gelu' | 'primer-ez' | 'primer', heads: number): VanillaWeights {
  const primer = baseline === 'primer';
  const norm = primer ? 'primer_norm' : 'layer_norm';
  return {
    norm1: normWeights(block, `h1:${norm}/`),
    attention: attentionWeights(block, 'h2:multi_head_attention/', { sharedQk: primer, heads }),
    norm2: normWeights(block, primer ? `h6:${norm}/` : `h4:${norm}/`),
    ffn: ffnWeights(block, primer ? 'h4:feed_forward/' : 'h5:feed_forward/'),
  };
}

/** The weights of a compiled transformer++ block in its reference's structure. */
export function transformerPlusPlusWeights(block: BlockVariables, heads: number): TransformerPlusPlusWeights {
  const [gate, up, down] = params(block, 'h5:feed_forward/', 'CONV_1X1');
  return {
    norm1: normWeights(block, 'h1:rms_norm/'),
    attention: attentionWeights(block, 'h2:multi_head_attention/', { sharedQk: false, heads }),
    norm2: normWeights(block, 'h4:rms_norm/'),
    ffn: { gate: gate!, up: up!, down: down! },
  };
}
