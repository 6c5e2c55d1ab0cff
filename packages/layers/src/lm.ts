import { timingSignal } from '@primer-search/compiler';
import type { Dna } from '@primer-search/dna';
import { checkModelInput } from './attention.js';
import { PrimerBlock, PrimerEZBlock, TransformerBlock, type BlockRecipe } from './blocks.js';
import { DnaBlock } from './dna-block.js';
import { layerNorm } from './ops.js';
import { single, singleShape, tf, type BaseLayerArgs, type LayerVariable, type Shape, type Tensor } from './tf.js';

export interface TiedEmbeddingArgs extends BaseLayerArgs {
  vocabSize: number;
  dModel: number;
  /** The context the model is trained for (what `generate` feeds it); longer inputs still run. */
  maxLength: number;
}

/**
 * The token embedding and the softmax tied to it, as the compiled language models: on int32
 * tokens `[batch, seq]` it returns `embedding[tokens] * sqrt(dModel) + position signal`
 * (sinusoidal) `[batch, seq, dModel]`; on features `[batch, seq, dModel]` it returns the logits
 * `features @ embedding^T` `[batch, seq, vocabSize]`. Use the same layer at both ends of a model.
 * Its weight `embedding` `[vocabSize, dModel]` starts normal with std dModel^-0.5.
 */
export class TiedEmbedding extends tf.layers.Layer {
  static className = 'TiedEmbedding';
  readonly vocabSize: number;
  readonly dModel: number;
  readonly maxLength: number;
  embedding?: LayerVariable;

  constructor(args: TiedEmbeddingArgs) {
    super(args);
    for (const k of ['vocabSize', 'dModel', 'maxLength'] as const) {
      if (!Number.isInteger(args?.[k]) || args[k] < 1) throw new Error(`TiedEmbedding: ${k} must be a positive integer, got ${args?.[k]}`);
    }
    if (args.dModel % 2 !== 0) throw new Error(`TiedEmbedding: dModel must be even (the position signal is half sines, half cosines), got ${args.dModel}`);
    this.vocabSize = args.vocabSize;
    this.dModel = args.dModel;
    this.maxLength = args.maxLength;
  }

  override build(): void {
    this.embedding = this.addWeight('embedding', [this.vocabSize, this.dModel], 'float32', tf.initializers.randomNormal({ mean: 0, stddev: this.dModel ** -0.5 }));
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const s = singleShape(inputShape);
    return s.length === 2 ? [s[0]!, s[1]!, this.dModel] : [...s.slice(0, -1), this.vocabSize];
  }

  override call(inputs: Tensor | Tensor[]): Tensor {
    return tf.tidy(() => {
      const x = single(inputs);
      const e = this.embedding!.read();
      if (x.rank === 2) {
        const [b, s] = x.shape as [number, number];
        const ids = x.dtype === 'int32' ? x : tf.cast(x, 'int32');
        const embedded = tf.reshape(tf.gather(e, tf.reshape(ids, [-1])), [b, s, this.dModel]);
        return tf.add(tf.mul(embedded, Math.sqrt(this.dModel)), tf.tensor(timingSignal(s, this.dModel), [1, s, this.dModel]));
      }
      const [b, s, d] = x.shape as [number, number, number];
      return tf.reshape(tf.matMul(tf.reshape(x, [b * s, d]), e, false, true), [b, s, this.vocabSize]);
    });
  }

  override getConfig() {
    return { ...super.getConfig(), vocabSize: this.vocabSize, dModel: this.dModel, maxLength: this.maxLength };
  }
}
tf.serialization.registerClass(TiedEmbedding);

/** Layer norm over the last axis with a learned scale and shift (weights `scale`, `shift`), epsilon 1e-6. */
export class LayerNorm extends tf.layers.Layer {
  static className = 'PrimerLayerNorm';
  private scale?: LayerVariable;
  private shift?: LayerVariable;
  override build(inputShape: Shape | Shape[]): void {
    const d = checkModelInput(singleShape(inputShape), this.name);
    this.scale = this.addWeight('scale', [d], 'float32', tf.initializers.ones());
    this.shift = this.addWeight('shift', [d], 'float32', tf.initializers.zeros());
    this.built = true;
  }
  override call(inputs: Tensor | Tensor[]): Tensor {
    return tf.tidy(() => layerNorm(single(inputs), this.scale!.read(), this.shift!.read()));
  }
}
tf.serialization.registerClass(LayerNorm);

export type BlockChoice = 'primer-ez' | 'primer' | 'transformer' | { dna: Dna | Record<string, unknown> };

export interface CausalLanguageModelOptions extends BlockRecipe {
  vocabSize: number;
  dModel: number;
  /** Blocks stacked. */
  layers: number;
  /** The context it is trained for. */
  maxLength: number;
  /** The block: a hand-written one, or any DNA (a block the search found). Default 'primer-ez'. */
  block?: BlockChoice;
  name?: string;
}

/**
 * A causal language model built from these layers, laid out as the compiled ones (so a trained
 * model's weights load into it by name): int32 tokens `[batch, seq]` -> `TiedEmbedding`
 * (`embedding`) -> N blocks (`layer0`, `layer1`, ...) -> `LayerNorm` (`final_norm`) -> the
 * tied softmax's logits `[batch, seq, vocabSize]`. Train it with `model.fit` and
 * `tf.losses.softmaxCrossEntropy` on one-hot next tokens (`nextTokenExamples`).
 */
export function causalLanguageModel(o: CausalLanguageModelOptions): tf.LayersModel {
  if (!Number.isInteger(o.layers) || o.layers < 1) throw new Error(`causalLanguageModel: layers must be a positive integer, got ${o.layers}`);
  const { block = 'primer-ez', vocabSize, dModel, maxLength, layers, name, ...recipe } = o;
  const tokens = tf.input({ shape: [null], dtype: 'int32', name: 'tokens' });
  const embedding = new TiedEmbedding({ vocabSize, dModel, maxLength, name: 'embedding' });
  let x = embedding.apply(tokens) as tf.SymbolicTensor;
  for (let l = 0; l < layers; l++) {
    const args = { ...recipe, name: `layer${l}` };
    const layer =
      typeof block === 'object'
        ? new DnaBlock({ dna: block.dna, seqLen: maxLength, name: `layer${l}` })
        : block === 'primer'
          ? new PrimerBlock(args)
          : block === 'transformer'
            ? new TransformerBlock(args)
            : block === 'primer-ez'
              ? new PrimerEZBlock(args)
              : undefined;
    if (!layer) throw new Error(`causalLanguageModel: block must be 'primer-ez', 'primer', 'transformer' or { dna }, got ${JSON.stringify(block)}`);
    x = layer.apply(x) as tf.SymbolicTensor;
  }
  x = new LayerNorm({ name: 'final_norm' }).apply(x) as tf.SymbolicTensor;
  const logits = embedding.apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: tokens, outputs: logits, name: name ?? 'causal_language_model' });
}

/** The context a model from `causalLanguageModel` was built for (its `embedding` layer's `maxLength`). */
export function contextLength(model: tf.LayersModel): number {
  const layer = model.layers.find((l) => l instanceof TiedEmbedding) as TiedEmbedding | undefined;
  if (!layer) throw new Error(`the model ${model.name} has no TiedEmbedding layer: not a model of causalLanguageModel`);
  return layer.maxLength;
}

/**
 * Training examples for `model.fit` from a token stream: windows of `seqLen` tokens (one
 * every `stride`, default `seqLen`) as int32 `xs` `[n, seqLen]`, and the next tokens one-hot
 * as `ys` `[n, seqLen, vocabSize]`.
 */
export function nextTokenExamples(ids: ArrayLike<number>, o: { seqLen: number; vocabSize: number; stride?: number }): { xs: Tensor; ys: Tensor } {
  const stride = o.stride ?? o.seqLen;
  const starts: number[] = [];
  for (let s = 0; s + o.seqLen + 1 <= ids.length; s += stride) starts.push(s);
  if (starts.length === 0) throw new Error(`nextTokenExamples: ${ids.length} tokens make no window of ${o.seqLen} + 1`);
  const xs = new Int32Array(starts.length * o.seqLen);
  const ys = new Int32Array(starts.length * o.seqLen);
  starts.forEach((s, i) => {
    for (let t = 0; t < o.seqLen; t++) {
      xs[i * o.seqLen + t] = ids[s + t]!;
      ys[i * o.seqLen + t] = ids[s + t + 1]!;
    }
  });
  return tf.tidy(() => ({
    xs: tf.tensor2d(xs, [starts.length, o.seqLen], 'int32'),
    ys: tf.oneHot(tf.tensor2d(ys, [starts.length, o.seqLen], 'int32'), o.vocabSize).toFloat(),
  }));
}

/**
 * Copies the weights of a compiled language model (`LanguageModel.namedVariables`: `embedding`,
 * `layer0/<parameter path>`, ..., `final_norm/scale`, `final_norm/shift`) into a model of
 * `causalLanguageModel` with `block: { dna }` and the same sizes. Every weight must be matched.
 */
export function setCompiledWeights(model: tf.LayersModel, weights: Iterable<[string, Tensor]>): void {
  const targets = new Map<string, LayerVariable>();
  for (const layer of model.layers) {
    if (layer instanceof TiedEmbedding) targets.set('embedding', layer.embedding!);
    else if (layer instanceof DnaBlock) for (const [path, v] of layer.parameters) targets.set(`${layer.name}/${path}`, v);
    else if (layer instanceof LayerNorm) for (const w of layer.trainableWeights) targets.set(`${layer.name}/${w.originalName.split('/').pop()}`, w);
  }
  const given = new Map(weights);
  const missing = [...targets.keys()].filter((k) => !given.has(k));
  const unknown = [...given.keys()].filter((k) => !targets.has(k));
  if (missing.length || unknown.length) {
    throw new Error(
      `the weights do not fit the model ${model.name}:${missing.length ? ` missing ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''};` : ''}${unknown.length ? ` not in the model ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ''}` : ''}`,
    );
  }
  for (const [name, v] of targets) {
    const t = given.get(name)!;
    if (t.shape.join('x') !== v.shape.join('x')) throw new Error(`the weight ${name} is [${t.shape.join(', ')}], the model's [${v.shape.join(', ')}]`);
    v.write(t);
  }
}
