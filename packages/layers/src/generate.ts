import { Rng } from '@primer-search/core';
import { contextLength } from './lm.js';
import { tf } from './tf.js';

export interface GenerateOptions {
  /** Tokens to sample. Default 100. */
  tokens?: number;
  /** Softmax temperature; 0 takes the most likely token every time. Default 1. */
  temperature?: number;
  /** Sample only among the k most likely tokens (0: all). Default 0. */
  topK?: number;
  /** Seeds the sampling: the same seed, model and prompt give the same text. Default 0. */
  seed?: number;
  /** Stop after sampling this token (e.g. the tokenizer's end of document). */
  stopAt?: number;
  /** The context fed to the model; default the model's own (`contextLength`). */
  maxLength?: number;
  /** Called with each sampled token; return false to stop. May be async (a page can paint between tokens). */
  onToken?: (id: number, index: number) => boolean | void | Promise<boolean | void>;
}

/**
 * The logits of the token after `ids` (float32, one per vocabulary entry). The model sees the
 * last `maxLength` tokens, right-padded with id 0 to exactly `maxLength` (causal, so the
 * padding cannot change the logits read at the last real position; and one input shape, so
 * blocks whose parameters depend on the length run too).
 */
export function nextTokenLogits(model: tf.LayersModel, ids: ArrayLike<number>, maxLength = contextLength(model)): Float32Array {
  const logits = nextTokenLogitsTensor(model, ids, maxLength);
  try {
    return logits.dataSync() as Float32Array;
  } finally {
    logits.dispose();
  }
}

/** `nextTokenLogits`, read asynchronously: what a GPU backend needs in Node (it has no synchronous read there). */
export async function nextTokenLogitsAsync(model: tf.LayersModel, ids: ArrayLike<number>, maxLength = contextLength(model)): Promise<Float32Array> {
  const logits = nextTokenLogitsTensor(model, ids, maxLength);
  try {
    return (await logits.data()) as Float32Array;
  } finally {
    logits.dispose();
  }
}

function nextTokenLogitsTensor(model: tf.LayersModel, ids: ArrayLike<number>, maxLength: number): tf.Tensor {
  if (ids.length === 0) throw new Error('nextTokenLogits: give at least one token');
  const window = Array.from(ids).slice(-maxLength);
  const input = new Int32Array(maxLength);
  input.set(window);
  return tf.tidy(() => {
    const logits = model.predict(tf.tensor2d(input, [1, maxLength], 'int32')) as tf.Tensor;
    const vocab = logits.shape[2] as number;
    return tf.slice(logits, [0, window.length - 1, 0], [1, 1, vocab]);
  });
}

/** Draws a token id from `logits` at `temperature` among the `topK` best (0: all). */
export function sampleToken(logits: Float32Array, rng: Rng, temperature = 1, topK = 0): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  if (temperature <= 0) return best;
  let candidates = Array.from(logits.keys());
  if (topK > 0 && topK < logits.length) candidates = candidates.sort((a, b) => logits[b]! - logits[a]!).slice(0, topK);
  const weights = candidates.map((i) => Math.exp((logits[i]! - logits[best]!) / temperature));
  let u = rng.float() * weights.reduce((a, b) => a + b, 0);
  let last = best;
  for (let j = 0; j < candidates.length; j++) {
    if (weights[j]! === 0) continue;
    last = candidates[j]!;
    if ((u -= weights[j]!) < 0) return last;
  }
  // rounding left u a hair above 0: the last token that could be drawn
  return last;
}

/** Samples a continuation of `prompt` (token ids) from a model of `causalLanguageModel`; returns the new ids. */
export async function generate(model: tf.LayersModel, prompt: ArrayLike<number>, o: GenerateOptions = {}): Promise<number[]> {
  const tokens = o.tokens ?? 100;
  const temperature = o.temperature ?? 1;
  if (!Number.isInteger(tokens) || tokens < 0) throw new Error(`generate: tokens must be a non-negative integer, got ${tokens}`);
  if (!(temperature >= 0)) throw new Error(`generate: temperature must be 0 or more, got ${temperature}`);
  // a child stream: the first draws of a small seed's own stream are close to 1 (xoroshiro128+)
  const rng = Rng.create(o.seed ?? 0).split('generate');
  const ids = Array.from(prompt);
  const out: number[] = [];
  for (let i = 0; i < tokens; i++) {
    const id = sampleToken(await nextTokenLogitsAsync(model, ids, o.maxLength), rng, temperature, o.topK ?? 0);
    ids.push(id);
    out.push(id);
    if ((await o.onToken?.(id, i)) === false || id === o.stopAt) break;
  }
  return out;
}
