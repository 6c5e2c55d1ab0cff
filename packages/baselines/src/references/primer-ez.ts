// Primer-EZ: vanilla + squared ReLU + multi-DConv-head attention (weights carry the dconv kernels).
import type { TF, Tensor } from '@primer-search/primitives';
import { feedForward, layerNorm, multiHeadAttention } from './common.js';
import type { VanillaWeights } from './vanilla.js';

export function primerEzBlock(tf: TF, x: Tensor, w: VanillaWeights, o: { scale: number }): Tensor {
  const a = tf.add(x, multiHeadAttention(tf, layerNorm(tf, x, w.norm1), w.attention, o));
  return tf.add(a, feedForward(tf, layerNorm(tf, a, w.norm2), w.ffn, (h) => tf.square(tf.relu(h))));
}
