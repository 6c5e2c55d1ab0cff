// Vanilla Transformer decoder block (pre-norm), as in Tensor2Tensor's defaults.
import type { TF, Tensor } from '@primer-search/primitives';
import { feedForward, layerNorm, multiHeadAttention, type AttentionWeights, type FeedForwardWeights, type NormWeights } from './common.js';

export interface VanillaWeights {
  norm1: NormWeights;
  attention: AttentionWeights;
  norm2: NormWeights;
  ffn: FeedForwardWeights;
}

export function vanillaBlock(tf: TF, x: Tensor, w: VanillaWeights, o: { scale: number }): Tensor {
  const a = tf.add(x, multiHeadAttention(tf, layerNorm(tf, x, w.norm1), w.attention, o));
  return tf.add(a, feedForward(tf, layerNorm(tf, a, w.norm2), w.ffn, (h) => tf.relu(h)));
}
