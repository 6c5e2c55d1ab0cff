import { Rng, type Seed } from '@primer-search/core';
import type { PrimitiveRegistry, TF, Tensor } from '@primer-search/primitives';
import { fusedNormalize, hasFusedNormalize } from './fusion.js';
import { compileBlock, type CompiledBlock, type RunOptions, type Variable } from './block.js';
import { CompileError, DEFAULT_LIMITS, planBlock, type BlockEstimate, type PlanLimits } from './plan.js';

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
  /** The training batch: when given, the model is refused before any allocation if a training step would not fit `limits.maxTrainingBytes`. */
  batch?: number;
}

export interface ModelEstimate {
  parameters: number;
  /** Forward FLOPs per token of the whole model (blocks, embedding scale, final norm, tied softmax). */
  forwardFlopsPerToken: number;
  /** Forward + backward, taken as 3x forward. */
  trainingFlopsPerToken: number;
  block: BlockEstimate;
  /** Bytes a training step is estimated to hold at its peak (`estimateTrainingBytes`), when the batch was given. */
  trainingBytes?: number;
  /** Bytes of the largest single tensor of a training step (a batch's largest state, the logits, the embedding or a block's largest parameter), when the batch was given. */
  largestTensorBytes?: number;
}

/**
 * What tfjs holds at the peak of one training step with Adam, in bytes: weights, gradients
 * and two moments (4 floats a parameter); the forward activations that backprop keeps, plus
 * the intermediates inside each primitive and the gradients flowing back (4 floats per
 * planned activation float, measured with tf.profile at 2-5.5x the planned states alone on
 * the baselines, chains of one op and random mutants); the logits, softmax, one-hot targets
 * and their gradient (6 floats per vocabulary entry per token); and the embedding and
 * final-norm states (8 floats per model dimension per token). A test keeps it within 0.6-2.5x
 * of tf.profile's peak.
 */
export function estimateTrainingBytes(
  block: BlockEstimate,
  model: LanguageModelConfig & { batch: number; parameters: number },
): number {
  const tokens = model.batch * model.seqLen;
  return (
    4 *
    (4 * model.parameters +
      4 * block.trainingFloatsPerSequence * model.layers * model.batch +
      6 * tokens * model.vocabSize +
      8 * tokens * model.dModel)
  );
}

export interface LanguageModel {
  config: LanguageModelConfig;
  /** The TensorFlow.js namespace it was compiled with (and trains on: the trainer takes it from here). */
  tf: TF;
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
  /**
   * From one forward pass: `loss` exactly as `loss()` computes it, `positions`, the
   * cross-entropy at each position averaged over the batch (`[seq]`; for the in-context score),
   * and with `guesses` the most likely next token at each position (int32 `[batch, seq]`).
   */
  evalLosses(tokens: Tensor, targets: Tensor, options?: { guesses?: boolean }): { loss: Tensor; positions: Tensor; guesses?: Tensor };
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

/**
 * The name of an optional fused kernel: inputs `logits` `[n, vocab]` (float32) and `targets`
 * `[n]` (int32), outputs the mean cross-entropy (a scalar) and its gradient (softmax - onehot) / n
 * in one pass. A backend that registers it (the trainer does for wasm) gets the loss without
 * the one-hot matrix, the log-softmax and the second softmax of the backward pass; elsewhere the
 * composite `softmaxCrossEntropy` runs. A target outside [0, vocab) adds no target term, as a
 * one-hot row of zeros would.
 */
export const FUSED_CROSS_ENTROPY = 'PrimerSoftmaxCrossEntropy';

/** Mean cross-entropy of `[n, vocab]` logits against int32 `[n]` targets: the fused kernel where the backend has it. */
export function sparseSoftmaxCrossEntropy(tf: TF, logits: Tensor, targets: Tensor): Tensor {
  const vocab = logits.shape[1] as number;
  if (!tf.getKernel(FUSED_CROSS_ENTROPY, tf.getBackend())) return softmaxCrossEntropy(tf, logits, tf.oneHot(targets as never, vocab));
  type Save = (ts: Tensor[]) => void;
  const f = tf.customGrad(((z: Tensor, t: Tensor, save: Save) => {
    const [value, grad] = tf.engine().runKernel(FUSED_CROSS_ENTROPY, { logits: z, targets: t } as never, {}) as unknown as [Tensor, Tensor];
    save([grad!, t]);
    return {
      value,
      gradFunc: (dy: Tensor, saved: Tensor[]) => [tf.mul(saved[0]!, dy), tf.zerosLike(saved[1]!)],
    };
  }) as unknown as Parameters<TF['customGrad']>[0]);
  return f(logits, targets);
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
 * The whole model's size and cost from its block's estimate (`planBlock(...).estimate`): what
 * `compileLanguageModel` reports as `estimate`, without compiling.
 */
export function modelEstimate(block: BlockEstimate, o: LanguageModelConfig & { batch?: number }): ModelEstimate {
  const forward = o.layers * block.forwardFlopsPerToken + 2 * o.dModel * o.vocabSize + 8 * o.dModel;
  const parameters = o.layers * block.parameters + o.vocabSize * o.dModel + 2 * o.dModel;
  return {
    parameters,
    forwardFlopsPerToken: forward,
    trainingFlopsPerToken: 3 * forward,
    block,
    ...(o.batch !== undefined
      ? {
          trainingBytes: estimateTrainingBytes(block, { ...o, batch: o.batch, parameters }),
          largestTensorBytes: 4 * Math.max(o.batch * block.largestStateFloatsPerSequence, o.batch * o.seqLen * o.vocabSize, o.vocabSize * o.dModel, block.largestParameterFloats),
        }
      : {}),
  };
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
  // plan once, check every limit, and only then allocate
  const plan = planBlock(dna, { dModel, seqLen }, { primitives: options.primitives, limits: options.limits });
  const estimate: ModelEstimate = modelEstimate(plan.estimate, options);
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const limit = limits.maxTrainingBytes;
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  // the largest tensor first: on a GPU it is the tighter bound, and the one the message can name
  if (estimate.largestTensorBytes !== undefined && estimate.largestTensorBytes > limits.maxTensorBytes) {
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    throw new CompileError(
      'MODEL_TOO_LARGE',
      `this model's largest tensor is estimated at ${mib(estimate.largestTensorBytes)} (batch ${options.batch}, seqLen ${seqLen}, vocabulary ${vocabSize}), over the backend's largest buffer of ${mib(limits.maxTensorBytes)} (a GPU's maxStorageBufferBindingSize)`,
    );
  }
  if (estimate.trainingBytes !== undefined && estimate.trainingBytes > limit) {
    throw new CompileError(
      'MODEL_TOO_LARGE',
      `training this model is estimated to hold ${gib(estimate.trainingBytes)} (batch ${options.batch}, seqLen ${seqLen}, ${layers} layers, ${estimate.parameters.toLocaleString('en-US')} parameters), over the limit of ${gib(limit)}`,
    );
  }
  const blocks: CompiledBlock[] = [];
  try {
    for (let l = 0; l < layers; l++) {
      blocks.push(
        compileBlock(plan, {
          tf,
          dModel,
          seqLen,
          seed: `${String(options.seed)}|layer${l}`,
          fuseProjections: options.fuseProjections,
          stackBranches: options.stackBranches,
          fuseKernels: options.fuseKernels,
        }),
      );
    }
  } catch (e) {
    for (const b of blocks) b.dispose();
    throw e;
  }
  const rng = Rng.create(`${String(options.seed)}|embedding`);
  // each made inside tidy: a variable takes its own reference to the data, and the initial tensor is disposed
  const embedding = tf.tidy(() => tf.variable(tf.tensor(rng.normalArray(vocabSize * dModel, 0, dModel ** -0.5), [vocabSize, dModel])));
  const finalNorm = { scale: tf.tidy(() => tf.variable(tf.ones([dModel]))), shift: tf.tidy(() => tf.variable(tf.zeros([dModel]))) };
  const position = tf.keep(tf.tensor(timingSignal(seqLen, dModel), [1, seqLen, dModel]));
  const namedVariables = new Map<string, Variable>([
    ['embedding', embedding],
    ...blocks.flatMap((b, l) => [...b.variables].map(([name, v]) => [`layer${l}/${name}`, v] as [string, Variable])),
    ['final_norm/scale', finalNorm.scale],
    ['final_norm/shift', finalNorm.shift],
  ]);
  const variables = [...namedVariables.values()];

  const logits = (tokens: Tensor): Tensor =>
    tf.tidy(() => {
      const [batch, len] = tokens.shape as [number, number];
      if (len !== seqLen) throw new CompileError('BAD_INPUT', `the model was compiled for sequences of ${seqLen} tokens, got ${len}`);
      let x = tf.reshape(tf.gather(embedding, tf.reshape(tokens, [-1])), [batch, len, dModel]);
      x = tf.add(tf.mul(x, Math.sqrt(dModel)), position);
      for (const b of blocks) x = b.apply(x);
      let normed: Tensor;
      if ((options.fuseKernels ?? true) && hasFusedNormalize(tf)) normed = fusedNormalize(tf, x);
      else {
        const mean = tf.mean(x, 2, true);
        const centred = tf.sub(x, mean);
        const variance = tf.mean(tf.square(centred), 2, true);
        normed = tf.div(centred, tf.sqrt(tf.add(variance, LAYER_NORM_EPS)));
      }
      x = tf.add(tf.mul(normed, finalNorm.scale), finalNorm.shift);
      return tf.reshape(tf.matMul(tf.reshape(x, [batch * len, dModel]), embedding, false, true), [batch, len, vocabSize]);
    });

  const loss = (tokens: Tensor, targets: Tensor): Tensor =>
    tf.tidy(() => {
      const z = tf.reshape(logits(tokens), [-1, vocabSize]);
      return sparseSoftmaxCrossEntropy(tf, z, tf.reshape(tf.cast(targets, 'int32'), [-1]));
    });

  const evalLosses = (tokens: Tensor, targets: Tensor, o: { guesses?: boolean } = {}): { loss: Tensor; positions: Tensor; guesses?: Tensor } => {
    const z = logits(tokens);
    try {
      return tf.tidy(() => {
        const [batch, len] = tokens.shape as [number, number];
        const t = tf.reshape(tf.cast(targets, 'int32'), [-1]);
        const flat = tf.reshape(z, [-1, vocabSize]);
        const mean = sparseSoftmaxCrossEntropy(tf, flat, t);
        // -log softmax at the target, per token: logsumexp minus the target's logit, then averaged over the batch.
        // The target's logit by one gather from the flat logits (no one-hot), where the flat index fits int32
        // (tfjs's gather with batchDims reads out of bounds on wasm).
        const n = batch * len;
        const picked =
          n * vocabSize < 2 ** 31
            ? tf.gather(tf.reshape(flat, [-1]), tf.add(tf.mul(tf.range(0, n, 1, 'int32'), tf.scalar(vocabSize, 'int32')), t))
            : tf.sum(tf.mul(flat, tf.oneHot(t as never, vocabSize)), 1);
        const perToken = tf.sub(tf.logSumExp(flat, 1), picked);
        const positions = tf.mean(tf.reshape(perToken, [batch, len]), 0);
        return { loss: mean, positions, ...(o.guesses ? { guesses: tf.argMax(z, 2) } : {}) };
      });
    } finally {
      z.dispose();
    }
  };

  return {
    config: { vocabSize, layers, dModel, seqLen },
    tf,
    blocks,
    embedding,
    finalNorm,
    variables,
    namedVariables,
    estimate,
    logits,
    loss,
    evalLosses,
    dispose: () => {
      for (const b of blocks) b.dispose();
      embedding.dispose();
      finalNorm.scale.dispose();
      finalNorm.shift.dispose();
      position.dispose();
    },
  };
}
