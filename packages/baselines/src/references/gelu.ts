// Transformer+GELU: the vanilla block with a GELU feed-forward.
import type { TF, Tensor } from '@primer-search/primitives';
import { feedForward, gelu, layerNorm, multiHeadAttention } from './common.js';
import type { VanillaWeights } from './vanilla.js';

export function geluBlock(tf: TF, x: Tensor, w: VanillaWeights, o: { scale: number }): Tensor {
  const a = tf.add(x, multiHeadAttention(tf, layerNorm(tf, x, w.norm1), w.attention, o));
  return tf.add(a, feedForward(tf, layerNorm(tf, a, w.norm2), w.ffn, (h) => gelu(tf, h)));
}
