import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tfjs from '@tensorflow/tfjs';
import { baselineDna, baselineWeights, primerEzBlock, reference, type VanillaWeights } from '@primer-search/baselines';
import { compileBlock, compileLanguageModel, type CompiledBlock } from '@primer-search/compiler';
import { Rng } from '@primer-search/core';
import { mutateDna, type Dna } from '@primer-search/dna';
import type { TF, Tensor } from '@primer-search/primitives';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DnaBlock,
  MultiDConvHeadAttention,
  PrimerBlock,
  PrimerEZBlock,
  SquaredReLU,
  TransformerBlock,
  WEIGHT_NAME,
  causalLanguageModel,
  contextLength,
  generate,
  nextTokenExamples,
  nextTokenLogits,
  parameterPath,
  sampleToken,
  setCompiledWeights,
  weightName,
  type BlockChoice,
} from './index.js';
import { fileSystem, loadModel } from './node.js';

tfjs.env().set('PROD', true);
await tfjs.setBackend('cpu');
const tf = tfjs as unknown as TF;

const D = 32;
const SEQ = 7;
const HEADS = 4;
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'primer-layers-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** max |a - b| / max(1, |b|) over all entries. */
function worst(a: Tensor, b: Tensor): number {
  expect(a.shape).toEqual(b.shape);
  const x = a.dataSync();
  const y = b.dataSync();
  let w = 0;
  for (let i = 0; i < x.length; i++) w = Math.max(w, Math.abs(x[i]! - y[i]!) / Math.max(1, Math.abs(y[i]!)));
  return w;
}

/** A compiled baseline block with random weights everywhere (so a swapped scale/shift or Q/K cannot hide behind 1s and 0s). */
function randomBlock(name: string, dna: unknown = baselineDna(name, { dModel: D, heads: HEADS })): CompiledBlock {
  const block = compileBlock(dna, { tf, dModel: D, seqLen: SEQ, seed: 1 });
  let k = 0;
  for (const v of block.variables.values()) v.assign(tf.randomNormal(v.shape, 0, 0.5, 'float32', ++k) as never);
  return block;
}

function setWeight(layer: tfjs.layers.Layer, name: string, value: Tensor): void {
  const w = layer.weights.find((v) => v.originalName === `${layer.name}/${name}`);
  if (!w) throw new Error(`${layer.name} has no weight ${name}: ${layer.weights.map((v) => v.originalName).join(', ')}`);
  w.write(value as never);
}

/** Copies a baseline's reference weights (per head) into a hand-written block layer (heads side by side). */
function setBlockWeights(layer: tfjs.layers.Layer, w: VanillaWeights, sharedQk: boolean): void {
  const heads = w.attention.heads;
  const side = (f: (h: (typeof heads)[number]) => Tensor | undefined) => tf.concat(heads.map((h) => f(h)!), 1);
  setWeight(layer, 'norm1/scale', w.norm1.scale);
  setWeight(layer, 'norm1/shift', w.norm1.shift!);
  setWeight(layer, 'norm2/scale', w.norm2.scale);
  setWeight(layer, 'norm2/shift', w.norm2.shift!);
  setWeight(layer, 'attention/q', sharedQk ? tf.stack(heads.map((h) => h.q)) : side((h) => h.q));
  setWeight(layer, 'attention/k', side((h) => h.k));
  setWeight(layer, 'attention/v', side((h) => h.v));
  if (heads[0]!.kConv) {
    if (!sharedQk) setWeight(layer, 'attention/q_conv', side((h) => h.qConv));
    setWeight(layer, 'attention/k_conv', side((h) => h.kConv));
    setWeight(layer, 'attention/v_conv', side((h) => h.vConv));
  }
  setWeight(layer, 'attention/out', w.attention.out);
  setWeight(layer, 'ffn/w1', w.ffn.w1);
  setWeight(layer, 'ffn/b1', w.ffn.b1!);
  setWeight(layer, 'ffn/w2', w.ffn.w2);
  setWeight(layer, 'ffn/b2', w.ffn.b2!);
}

const x = tf.randomNormal([2, SEQ, D], 0, 1, 'float32', 99);

describe('hand-written layers equal the compiled blocks with the same weights (1e-5)', () => {
  const cases = [
    { layer: () => new TransformerBlock({ heads: HEADS }), baseline: 'vanilla', sharedQk: false },
    { layer: () => new PrimerEZBlock({ heads: HEADS }), baseline: 'primer-ez', sharedQk: false },
    { layer: () => new PrimerBlock({ heads: HEADS }), baseline: 'primer', sharedQk: true },
    { layer: () => new TransformerBlock({ heads: HEADS, activation: 'gelu' }), baseline: 'gelu', sharedQk: false },
  ] as const;
  for (const c of cases) {
    it(`${c.layer().getClassName()} (${c.baseline})`, () => {
      const block = randomBlock(c.baseline);
      const layer = c.layer();
      layer.apply(tf.zeros([1, SEQ, D]) as never);
      expect(layer.countParams()).toBe(block.plan.estimate.parameters);
      setBlockWeights(layer, baselineWeights(block, c.baseline, HEADS), c.sharedQk);
      expect(worst(layer.apply(x as never) as Tensor, block.apply(x))).toBeLessThan(1e-5);
      block.dispose();
    });
  }

  it("PrimerEZBlock equals the Primer-EZ baseline's hand-written reference", () => {
    const block = randomBlock('primer-ez');
    const w = baselineWeights(block, 'primer-ez', HEADS);
    const layer = new PrimerEZBlock({ heads: HEADS });
    layer.apply(tf.zeros([1, SEQ, D]) as never);
    setBlockWeights(layer, w, false);
    const want = primerEzBlock(tf, x, w, { scale: 1 / Math.sqrt(D / HEADS) });
    expect(worst(layer.apply(x as never) as Tensor, want)).toBeLessThan(1e-5);
    block.dispose();
  });

  for (const dconv of [true, false]) {
    it(`MultiDConvHeadAttention (dconv ${dconv}) equals the reference attention`, () => {
      const block = randomBlock(dconv ? 'primer-ez' : 'vanilla');
      const w = baselineWeights(block, dconv ? 'primer-ez' : 'vanilla', HEADS).attention;
      const layer = new MultiDConvHeadAttention({ heads: HEADS, dconv });
      layer.apply(tf.zeros([1, SEQ, D]) as never);
      const side = (f: (h: (typeof w.heads)[number]) => Tensor | undefined) => tf.concat(w.heads.map((h) => f(h)!), 1);
      setWeight(layer, 'q', side((h) => h.q));
      setWeight(layer, 'k', side((h) => h.k));
      setWeight(layer, 'v', side((h) => h.v));
      if (dconv) for (const n of ['q', 'k', 'v'] as const) setWeight(layer, `${n}_conv`, side((h) => h[`${n}Conv`]));
      setWeight(layer, 'out', w.out);
      const want = reference.multiHeadAttention(tf, x, w, { scale: 1 / Math.sqrt(D / HEADS) });
      expect(worst(layer.apply(x as never) as Tensor, want)).toBeLessThan(1e-5);
      block.dispose();
    });
  }

  it("MultiDConvHeadAttention starts from the released depthwise initialisation and takes a key width", () => {
    const layer = new MultiDConvHeadAttention({ heads: 2, keyWidth: 8 });
    layer.apply(tf.zeros([1, SEQ, D]) as never);
    const conv = layer.weights.find((v) => v.originalName.endsWith('/k_conv'))!.read();
    expect(conv.shape).toEqual([3, 16]);
    const rows = conv.arraySync() as number[][];
    for (const [i, want] of [0.5, 0.5 / 3, 0.5 / 3].entries()) for (const v of rows[i]!) expect(v).toBeCloseTo(want, 7);
    expect(layer.weights.find((v) => v.originalName.endsWith('/out'))!.shape).toEqual([16, D]);
  });

  it('SquaredReLU is max(x, 0)^2', () => {
    const v = tf.tensor1d([-2, -0.5, 0, 0.5, 3]);
    expect(Array.from((new SquaredReLU().apply(v as never) as Tensor).dataSync())).toEqual([0, 0, 0, 0.25, 9]);
  });

  it('refuses a model width the heads do not divide, naming the layer', () => {
    expect(() => new PrimerEZBlock({ heads: 3, name: 'odd' }).apply(tf.zeros([1, SEQ, D]) as never)).toThrow(/odd: keyWidth must be a positive integer/);
  });
});

const mutants = (n: number, seed: number): Dna[] => {
  const rng = Rng.create(seed);
  return Array.from({ length: n }, () => mutateDna(baselineDna('vanilla', { dModel: D, heads: HEADS }), rng, { requireValid: true }).child);
};

describe('DnaBlock', () => {
  const dnas: Array<[string, unknown]> = [
    ['primer', baselineDna('primer', { dModel: D, heads: HEADS })],
    ['transformer++', baselineDna('transformer++', { dModel: D, heads: HEADS })],
    ...mutants(3, 7).map((m, i) => [`mutant ${i}`, m] as [string, unknown]),
  ];
  for (const [name, dna] of dnas) {
    it(`${name}: computes the compiled block, with valid and reversible weight names`, () => {
      const block = randomBlock(name, dna);
      const layer = new DnaBlock({ dna: dna as Dna, seqLen: SEQ });
      layer.apply(tf.zeros([1, SEQ, D]) as never);
      expect([...layer.parameters.keys()].sort()).toEqual([...block.variables.keys()].sort());
      for (const [path, v] of layer.parameters) {
        expect(v.originalName).toMatch(WEIGHT_NAME);
        expect(parameterPath(weightName(path))).toBe(path);
        v.write(block.variables.get(path)! as never);
      }
      expect(worst(layer.apply(x as never) as Tensor, block.apply(x))).toBeLessThan(1e-5);
      block.dispose();
    });
  }

  it('runs on other lengths than it was planned for', () => {
    const layer = new DnaBlock({ dna: baselineDna('primer-ez', { dModel: D, heads: HEADS }), seqLen: SEQ });
    const y = layer.apply(tf.randomNormal([1, 12, D]) as never) as Tensor;
    expect(y.shape).toEqual([1, 12, D]);
  });

  it('names what is wrong with an invalid DNA', () => {
    expect(() => new DnaBlock({ dna: { format: 'primer-dna' } }).apply(tf.zeros([1, SEQ, D]) as never)).toThrow(/version|subprograms|main/i);
  });
});

const blocks: Array<[string, BlockChoice]> = [
  ['primer-ez', 'primer-ez'],
  ['primer', 'primer'],
  ['transformer', 'transformer'],
  ['DnaBlock (primer-ez)', { dna: baselineDna('primer-ez', { dModel: D, heads: HEADS }) }],
];
const VOCAB = 23;
const lm = (block: BlockChoice) => causalLanguageModel({ vocabSize: VOCAB, dModel: D, layers: 2, maxLength: 8, block, heads: HEADS });
const tokens = (rows: number[][]) => tf.tensor2d(rows, [rows.length, rows[0]!.length], 'int32');

describe('causalLanguageModel', () => {
  it('computes what the compiled language model computes, once its weights are copied (1e-5)', () => {
    const dna = baselineDna('primer-ez', { dModel: D, heads: HEADS });
    const compiled = compileLanguageModel(dna, { tf, vocabSize: VOCAB, layers: 2, dModel: D, seqLen: 8, seed: 3 });
    for (const v of compiled.variables) v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.1, 'float32', 5)) as never);
    const model = lm({ dna });
    setCompiledWeights(model, compiled.namedVariables);
    const ids = tokens([[1, 5, 7, 2, 0, 22, 9, 3], [4, 4, 4, 1, 2, 3, 8, 8]]);
    expect(worst(model.predict(ids) as Tensor, compiled.logits(ids))).toBeLessThan(1e-5);
    expect(() => setCompiledWeights(lm({ dna }), [...compiled.namedVariables].slice(1))).toThrow(/missing embedding/);
    compiled.dispose();
  });

  for (const [name, block] of blocks) {
    it(`${name}: is causal, and saves and loads with identical outputs`, async () => {
      const model = lm(block);
      const a = model.predict(tokens([[3, 1, 4, 1, 5, 9, 2, 6]])) as Tensor;
      const b = model.predict(tokens([[3, 1, 4, 1, 7, 7, 7, 7]])) as Tensor;
      // positions 0-3 see the same tokens; position 4 on sees a different one
      expect(worst(tf.slice(a, [0, 0, 0], [1, 4, VOCAB]), tf.slice(b, [0, 0, 0], [1, 4, VOCAB]))).toBeLessThan(1e-6);
      expect(worst(tf.slice(a, [0, 4, 0], [1, 1, VOCAB]), tf.slice(b, [0, 4, 0], [1, 1, VOCAB]))).toBeGreaterThan(1e-4);
      const dir = tempDir();
      await model.save(fileSystem(dir));
      const loaded = await loadModel(dir);
      expect(loaded.layers.map((l) => l.getClassName())).toEqual(model.layers.map((l) => l.getClassName()));
      expect(contextLength(loaded)).toBe(8);
      expect(worst(loaded.predict(tokens([[3, 1, 4, 1, 5, 9, 2, 6]])) as Tensor, a)).toBe(0);
    });
  }

  it('trains with model.fit: Primer-EZ, and a DnaBlock of a random valid mutant', async () => {
    // a stream with structure to learn: each token depends on the two before it
    const ids = [1, 2];
    for (let i = 2; i < 900; i++) ids.push((ids[i - 1]! + 2 * ids[i - 2]!) % VOCAB);
    const { xs, ys } = nextTokenExamples(ids, { seqLen: 8, vocabSize: VOCAB });
    expect(xs.shape).toEqual([112, 8]);
    expect(ys.shape).toEqual([112, 8, VOCAB]);
    for (const block of ['primer-ez', { dna: mutants(1, 11)[0]! }] as BlockChoice[]) {
      const model = lm(block);
      model.compile({ optimizer: tfjs.train.adam(3e-3), loss: tfjs.losses.softmaxCrossEntropy });
      // the loss before any training (the first epoch's mean already includes some learning, and varies with the initial weights)
      const before = (model.evaluate(xs, ys, { batchSize: 16 }) as Tensor).dataSync()[0]!;
      const history = await model.fit(xs, ys, { epochs: 6, batchSize: 16, verbose: 0 });
      const loss = history.history.loss as number[];
      expect(before).toBeGreaterThan(2);
      expect(loss.at(-1)!).toBeLessThan(0.8 * before);
    }
  }, 180_000);
});

describe('generate', () => {
  const model = lm('primer-ez');

  it('reads the logits of a short prompt through a padded window, as an unpadded run', () => {
    const unpadded = model.predict(tokens([[5, 6, 7]])) as Tensor;
    const want = tf.slice(unpadded, [0, 2, 0], [1, 1, VOCAB]).dataSync();
    const got = nextTokenLogits(model, [5, 6, 7]);
    expect(got).toHaveLength(VOCAB);
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 5));
  });

  it('samples the same text for the same seed, and the most likely token at temperature 0', async () => {
    const a = await generate(model, [1, 2, 3], { tokens: 12, seed: 4 });
    expect(a).toHaveLength(12);
    expect(await generate(model, [1, 2, 3], { tokens: 12, seed: 4 })).toEqual(a);
    expect(await generate(model, [1, 2, 3], { tokens: 12, seed: 5 })).not.toEqual(a);
    const greedy = await generate(model, [1, 2, 3], { tokens: 3, temperature: 0 });
    const first = nextTokenLogits(model, [1, 2, 3]);
    expect(greedy[0]).toBe(first.indexOf(Math.max(...first)));
    // stops right after the first time it samples the stop token
    expect(await generate(model, [1, 2, 3], { tokens: 10, temperature: 0, stopAt: greedy[1] })).toEqual(greedy.slice(0, greedy.indexOf(greedy[1]!) + 1));
  });

  it('draws tokens in proportion to softmax(logits / temperature)', () => {
    const rng = Rng.create(1);
    const logits = Float32Array.from([0, Math.log(3), -Infinity]);
    const counts = [0, 0, 0];
    for (let i = 0; i < 4000; i++) counts[sampleToken(logits, rng)]!++;
    expect(counts[2]).toBe(0);
    expect(counts[1]! / counts[0]!).toBeGreaterThan(2.6);
    expect(counts[1]! / counts[0]!).toBeLessThan(3.4);
    expect(sampleToken(Float32Array.from([1, 1, 5, 2]), rng, 1, 1)).toBe(2);
    // a draw of (almost) 1 never lands on a token of probability 0
    const top = { float: () => 1 - 2 ** -53 } as unknown as Rng;
    expect(sampleToken(Float32Array.from([3, 0.5, -Infinity]), top)).toBe(1);
  });
});
