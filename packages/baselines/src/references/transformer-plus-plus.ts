// Transformer++: RMSNorm and a SwiGLU feed-forward (no biases).
import type { TF, Tensor } from '@primer-search/primitives';
import { dense, multiHeadAttention, rmsNorm, type AttentionWeights, type NormWeights } from './common.js';

export interface TransformerPlusPlusWeights {
  norm1: NormWeights;
  attention: AttentionWeights;
  norm2: NormWeights;
  /** gate `[d, h]`, up `[d, h]`, down `[h, d]` */
  ffn: { gate: Tensor; up: Tensor; down: Tensor };
}

export function transformerPlusPlusBlock(tf: TF, x: Tensor, w: TransformerPlusPlusWeights, o: { scale: number }): Tensor {
  const a = tf.add(x, multiHeadAttention(tf, rmsNorm(tf, x, w.norm1), w.attention, o));
  const n = rmsNorm(tf, a, w.norm2);
  const gate = dense(tf, n, w.ffn.gate);
  const swiglu = tf.mul(tf.mul(gate, tf.sigmoid(gate)), dense(tf, n, w.ffn.up));
  return tf.add(a, dense(tf, swiglu, w.ffn.down));
}
