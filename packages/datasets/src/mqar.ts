// Multi-query associative recall (Arora et al. 2023, "Zoology"): a synthetic task that only a
// model using its context can solve. Each example is `seqLen` tokens: key-value pairs, then
// queries (keys from the pairs, each followed by its value). The answer to a query is the value
// its key had earlier in the same example: a model must find the key and copy what followed.
import { Rng } from '@primer-search/core';
import { PrimerError } from '@primer-search/core';
import type { TokenSource } from './cache.js';
import { corpora } from './corpus.js';
import type { Tokenizer } from './tokenizer.js';

export interface MqarOptions {
  /** Vocabulary: id 0 is padding; keys are 1 .. vocab/2 - 1, values vocab/2 .. vocab - 1. */
  vocab: number;
  /** Key-value pairs at the start of each example. */
  pairs: number;
  /** Tokens per example (the model's window). */
  length: number;
}

/** Training and validation examples (fixed by the options alone, not by a run's seed). */
export const MQAR_EXAMPLES = { train: 16_384, validation: 512 } as const;

/** The checks an MQAR setting must pass: keys enough for the pairs, room for one query. */
export function checkMqar(o: MqarOptions): void {
  if (!Number.isInteger(o.vocab) || o.vocab < 8) throw new PrimerError('BAD_DATASET', `mqar: the vocabulary must be an integer of at least 8 (got ${o.vocab})`);
  if (!Number.isInteger(o.pairs) || o.pairs < 1) throw new PrimerError('BAD_DATASET', `mqar: the pairs must be a positive integer (got ${o.pairs})`);
  if (o.pairs > Math.floor(o.vocab / 2) - 1) throw new PrimerError('BAD_DATASET', `mqar: ${o.pairs} pairs need as many distinct keys; vocabulary ${o.vocab} has ${Math.floor(o.vocab / 2) - 1} (raise --vocab-size)`);
  if (2 * o.pairs + 2 > o.length) throw new PrimerError('BAD_DATASET', `mqar: ${o.pairs} pairs and a query need ${2 * o.pairs + 2} tokens; the window is ${o.length} (raise --seq-len or lower --mqar-pairs)`);
}

/**
 * One example: `pairs` distinct keys each followed by a value, then queries, each a key of the
 * pairs followed by its value, filling the window (keys drawn without repeats until all were asked).
 */
export function mqarExample(rng: Rng, o: MqarOptions): Uint32Array {
  const half = Math.floor(o.vocab / 2);
  const out = new Uint32Array(o.length);
  const keys: number[] = [];
  const pool = Array.from({ length: half - 1 }, (_, i) => i + 1);
  for (let i = 0; i < o.pairs; i++) {
    const j = rng.int(i, pool.length - 1);
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
    keys.push(pool[i]!);
  }
  const values = keys.map(() => rng.int(half, o.vocab - 1));
  keys.forEach((k, i) => {
    out[2 * i] = k;
    out[2 * i + 1] = values[i]!;
  });
  let order: number[] = [];
  for (let at = 2 * o.pairs; at + 1 < o.length; at += 2) {
    if (order.length === 0) {
      order = keys.map((_, i) => i);
      for (let i = order.length - 1; i > 0; i--) {
        const j = rng.int(0, i);
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
    }
    const q = order.pop()!;
    out[at] = keys[q]!;
    out[at + 1] = values[q]!;
  }
  return out;
}

/** Positions of a window whose next token is a query's answer (the queried keys'): where recall is measured. */
export function mqarQueryPositions(o: MqarOptions): number[] {
  const out: number[] = [];
  for (let at = 2 * o.pairs; at + 1 < o.length; at += 2) out.push(at);
  return out;
}

/** `count` examples back to back, as a token source whose documents are the examples (windows start at one). */
export function mqarSource(o: MqarOptions, split: 'train' | 'validation', count: number = MQAR_EXAMPLES[split]): TokenSource {
  checkMqar(o);
  const rng = Rng.create(`mqar|${split}|${o.vocab}|${o.pairs}|${o.length}`);
  // one extra token at the end, so the last example's window has its next token (padding)
  const tokens = new Uint32Array(count * o.length + 1);
  for (let e = 0; e < count; e++) tokens.set(mqarExample(rng, o), e * o.length);
  const starts = Float64Array.from({ length: count }, (_, e) => e * o.length);
  return { length: tokens.length, read: (start, n) => tokens.subarray(start, start + n), documentStarts: () => starts };
}

/** The tokenizer of MQAR data: ids as `k5` (keys), `v40` (values) and `_` (padding). */
export function mqarTokenizer(o: Pick<MqarOptions, 'vocab'>): Tokenizer {
  const half = Math.floor(o.vocab / 2);
  return {
    name: 'mqar',
    vocabSize: o.vocab,
    endOfDocument: 0,
    fingerprint: `mqar-${o.vocab}`,
    encode: (text) =>
      Uint32Array.from(
        text
          .split(/\s+/)
          .filter(Boolean)
          .map((w) => {
            const m = /^([kv])(\d+)$/.exec(w);
            if (w === '_') return 0;
            if (!m || Number(m[2]) >= o.vocab) throw new PrimerError('BAD_INPUT', `mqar tokens are k<id>, v<id> or _, below ${o.vocab}; got ${JSON.stringify(w)}`);
            return Number(m[2]);
          }),
      ),
    decode: (ids) => Array.from(ids, (id) => (id === 0 ? '_' : id < half ? `k${id}` : `v${id}`)).join(' '),
  };
}

/** The default MQAR vocabulary and pairs (`--vocab-size`, `--mqar-pairs`). */
export const MQAR_DEFAULTS = { vocab: 64, pairs: 8 } as const;

corpora.register('mqar', {
  name: 'mqar',
  description: `multi-query associative recall (synthetic, Arora et al. 2023): key-value pairs then queries, one example per window; --vocab-size (default ${MQAR_DEFAULTS.vocab}) and --mqar-pairs (default ${MQAR_DEFAULTS.pairs}); recall is measured at the queries`,
  open: () => {
    throw new PrimerError('BAD_DATASET', 'mqar is generated, not read from files: there is nothing to prepare or stream (train on it with --dataset mqar)');
  },
});
