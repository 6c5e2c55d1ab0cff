import { Rng, type Seed } from '@primer-search/core';
import type { PrimitiveRegistry, TF, Tensor } from '@primer-search/primitives';
import { compileBlock, type CompiledBlock, type RunOptions, type Variable } from './block.js';
import { CompileError, type BlockEstimate, type PlanLimits } from './plan.js';

export interface LanguageModelConfig {
  vocabSize: number;
  layers: number;
  dModel: number;
  seqLen: number;
}

export interface CompileModelOptions extends LanguageModelConfig, RunOptions {
  tf: TF;
  seed: Seed;
  primitives?: PrimitiveRegistry;
  limits?: PlanLimits;
}

export interface ModelEstimate {
  parameters: number;
  /** Forward FLOPs per token of the whole model (blocks, embedding scale, final norm, tied softmax). */
  forwardFlopsPerToken: number;
  /** Forward + backward, taken as 3x forward. */
  trainingFlopsPerToken: number;
  block: BlockEstimate;
}

export interface LanguageModel {
  config: LanguageModelConfig;
  blocks: CompiledBlock[];
  embedding: Variable;
  finalNorm: { scale: Variable; shift: Variable };
  /** Every trainable variable, in a stable order. */
  variables: Variable[];
  /** The same, by name (`embedding`, `layer0/h1:layer_norm/h8:SCALE.scale`, ..., `final_norm/scale`). */
  namedVariables: Map<string, Variable>;
  estimate: ModelEstimate;
  /** int32 `[batch, seq]` -> logits `[batch, seq, vocab]`. */
  logits(tokens: Tensor): Tensor;
  /** Mean next-token cross-entropy (nats) of `targets` given `tokens`, both int32 `[batch, seq]`. */
  loss(tokens: Tensor, targets: Tensor): Tensor;
  dispose(): void;
}

export const LAYER_NORM_EPS = 1e-6;

/**
 * Mean cross-entropy of `[n, vocab]` logits against one-hot targets, with the textbook
 * gradient (softmax - onehot) / n. Cheaper than differentiating log-sum-exp, whose max
 * gradient builds a broadcast equality mask over the whole vocabulary.
 */
export function softmaxCrossEntropy(tf: TF, logits: Tensor, oneHot: Tensor): Tensor {
  const n = logits.shape[0] as number;
  type Save = (ts: Tensor[]) => void;
  const f = tf.customGrad(((z: Tensor, t: Tensor, save: Save) => {
    save([z, t]);
    const value = tf.div(tf.neg(tf.sum(tf.mul(tf.logSoftmax(z), t))), n);
    return {
      value,
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const [zs, ts] = saved as [Tensor, Tensor];
        return [tf.mul(tf.sub(tf.softmax(zs), ts), tf.div(dy, n)), tf.zerosLike(ts)];
      },
    };
  }) as unknown as Parameters<TF['customGrad']>[0]);
  return f(logits, oneHot);
}

/** Sinusoidal position signal `[seq, d]`: sines in the first half of the features, cosines in the second (as Tensor2Tensor). */
export function timingSignal(seqLen: number, d: number): Float32Array {
  const half = d / 2;
  const out = new Float32Array(seqLen * d);
  const logIncrement = Math.log(10_000) / Math.max(half - 1, 1);
  for (let pos = 0; pos < seqLen; pos++) {
    for (let i = 0; i < half; i++) {
      const angle = pos * Math.exp(-i * logIncrement);
      out[pos * d + i] = Math.sin(angle);
      out[pos * d + half + i] = Math.cos(angle);
    }
  }
  return out;
}

/**
 * The autoregressive LM around a DNA (the parts the paper keeps outside the searched
 * program): token embedding scaled by sqrt(dModel) plus a sinusoidal position signal, N
 * stacked blocks (each with its own weights), a final layer norm, and a softmax tied to the
 * embedding.
 */
export function compileLanguageModel(dna: unknown, options: CompileModelOptions): LanguageModel {
  const { tf, vocabSize, layers, dModel, seqLen } = options;
  if (!Number.isInteger(vocabSize) || vocabSize < 2) throw new CompileError('BAD_SIZE', `vocabSize must be an integer >= 2, got ${vocabSize}`);
  if (!Number.isInteger(layers) || layers < 1) throw new CompileError('BAD_SIZE', `layers must be a positive integer, got ${layers}`);
  const blocks: CompiledBlock[] = [];
  try {
    for (let l = 0; l < layers; l++) {
      blocks.push(
        compileBlock(dna, {
          tf,
          dModel,
          seqLen,
          seed: `${String(options.seed)}|layer${l}`,
          primitives: options.primitives,
          limits: options.limits,
          fuseProjections: options.fuseProjections,
        }),
      );
    }
  } catch (e) {
    for (const b of blocks) b.dispose();
    throw e;
  }
  const rng = Rng.create(`${String(options.seed)}|embedding`);
  const embedding = tf.variable(tf.tensor(rng.normalArray(vocabSize * dModel, 0, dModel ** -0.5), [vocabSize, dModel]));
  const finalNorm = { scale: tf.variable(tf.ones([dModel])), shift: tf.variable(tf.zeros([dModel])) };
  const position = tf.keep(tf.tensor(timingSignal(seqLen, dModel), [1, seqLen, dModel]));
  const namedVariables = new Map<string, Variable>([
    ['embedding', embedding],
    ...blocks.flatMap((b, l) => [...b.variables].map(([name, v]) => [`layer${l}/${name}`, v] as [string, Variable])),
    ['final_norm/scale', finalNorm.scale],
    ['final_norm/shift', finalNorm.shift],
  ]);
  const variables = [...namedVariables.values()];

  const block = blocks[0]!.plan.estimate;
  const forward = layers * block.forwardFlopsPerToken + 2 * dModel * vocabSize + 8 * dModel;
  const estimate: ModelEstimate = {
    parameters: variables.reduce((a, v) => a + v.size, 0),
    forwardFlopsPerToken: forward,
    trainingFlopsPerToken: 3 * forward,
    block,
  };

  const logits = (tokens: Tensor): Tensor =>
    tf.tidy(() => {
      const [batch, len] = tokens.shape as [number, number];
      if (len !== seqLen) throw new CompileError('BAD_INPUT', `the model was compiled for sequences of ${seqLen} tokens, got ${len}`);
      let x = tf.reshape(tf.gather(embedding, tf.reshape(tokens, [-1])), [batch, len, dModel]);
      x = tf.add(tf.mul(x, Math.sqrt(dModel)), position);
      for (const b of blocks) x = b.apply(x);
      const mean = tf.mean(x, 2, true);
      const centred = tf.sub(x, mean);
      const variance = tf.mean(tf.square(centred), 2, true);
      x = tf.add(tf.mul(tf.div(centred, tf.sqrt(tf.add(variance, LAYER_NORM_EPS))), finalNorm.scale), finalNorm.shift);
      return tf.reshape(tf.matMul(tf.reshape(x, [batch * len, dModel]), embedding, false, true), [batch, len, vocabSize]);
    });

  const loss = (tokens: Tensor, targets: Tensor): Tensor =>
    tf.tidy(() => {
      const z = tf.reshape(logits(tokens), [-1, vocabSize]);
      return softmaxCrossEntropy(tf, z, tf.oneHot(tf.reshape(tf.cast(targets, 'int32'), [-1]), vocabSize));
    });

  return {
    config: { vocabSize, layers, dModel, seqLen },
    blocks,
    embedding,
    finalNorm,
    variables,
    namedVariables,
    estimate,
    logits,
    loss,
    dispose: () => {
      for (const b of blocks) b.dispose();
      embedding.dispose();
      finalNorm.scale.dispose();
      finalNorm.shift.dispose();
      position.dispose();
    },
  };
}
