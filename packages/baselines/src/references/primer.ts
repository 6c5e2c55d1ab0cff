// Primer: shared Q/K with MDHA, squared ReLU, Primer norm; pre-norm attention, post-norm feed-forward.
import type { TF, Tensor } from '@primer-search/primitives';
import { feedForward, multiHeadAttention, primerNorm } from './common.js';
import type { VanillaWeights } from './vanilla.js';

export function primerBlock(tf: TF, x: Tensor, w: VanillaWeights, o: { scale: number }): Tensor {
  const a = tf.add(x, multiHeadAttention(tf, primerNorm(tf, x, w.norm1), w.attention, { ...o, sharedQk: true }));
  return primerNorm(tf, tf.add(a, feedForward(tf, a, w.ffn, (h) => tf.square(tf.relu(h)))), w.norm2);
}
