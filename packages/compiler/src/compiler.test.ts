import { readFileSync } from 'node:fs';
import { Rng } from '@primer-search/core';
import { DnaBuilder, canonicalDna, dnaHash, mutateDna, validateDna, type Dna } from '@primer-search/dna';
import type { Tensor } from '@primer-search/primitives';
import { describe, expect, it } from 'vitest';
import { tf, tfjs } from './__fixtures__/tf-cpu.js';
import { compileBlock, initialBlockValues } from './block.js';
import { compileLanguageModel, softmaxCrossEntropy, timingSignal } from './lm.js';
import { DNA_LIMITS } from '@primer-search/dna';
import { opChain, wideProjections } from '../../dna/src/__fixtures__/large-programs.js';
import { CompileError, planBlock, type SubprogramPlan } from './plan.js';
import { normalizeChains, softmaxChains } from './fusion.js';

const seedDna = (): Dna => {
  const r = validateDna(JSON.parse(readFileSync(new URL('../../../examples/dna/vanilla.json', import.meta.url), 'utf8')));
  if (!r.ok) throw r.error;
  return r.dna;
};

/** A DNA that hashes like `dna` but differs in everything the hash ignores: numbering, names, dead code, bank layout. */
function disguise(dna: Dna): Dna {
  const c = canonicalDna(dna);
  const n = c.subprograms.length;
  // subprograms 1..n-1 in another numbering that keeps callees above callers: move each up by one, with an unused one at 1
  const shift = (t: number) => (t === 0 ? 0 : t + 1);
  const subprograms = [
    c.subprograms[0]!,
    { name: 'never called', instructions: [{ op: 'TANH', input1: 0, input2: 0, constant: 0, dimSize: 0, target: 0, branching: 1 as const }] },
    ...c.subprograms.slice(1),
  ].map((sub, s) => ({
    name: `renamed ${s}`,
    instructions: [
      // a dead instruction first: every state index moves up by one
      { op: 'SIN', input1: 0, input2: 0, constant: 0, dimSize: 0, target: 0, branching: 1 as const },
      ...sub.instructions.map((ins) => ({
        ...ins,
        input1: ins.input1 + (ins.input1 >= (s === 0 ? 1 : 2) ? 1 : 0),
        input2: ins.input2 + (ins.input2 >= (s === 0 ? 1 : 2) ? 1 : 0),
        target: ins.op === 'CALL' ? shift(ins.target) : 0,
        // bank entries moved: one unused value in front of each list
        constant: ins.constant + 1,
        dimSize: ins.dimSize + 1,
      })),
    ],
  }));
  expect(n + 1).toBe(subprograms.length);
  return { ...c, bank: { constants: [42, ...c.bank.constants], dimSizes: [64, ...c.bank.dimSizes] }, subprograms } as Dna;
}

describe('initial weights', () => {
  it('are equal for DNAs with equal canonical hashes (vanilla and random mutants, disguised)', () => {
    const rng = Rng.create(12);
    const dnas = [seedDna(), ...Array.from({ length: 6 }, () => mutateDna(seedDna(), rng, { requireValid: true }).child)];
    for (const dna of dnas) {
      const other = disguise(dna);
      expect(validateDna(other).ok).toBe(true);
      expect(dnaHash(other)).toBe(dnaHash(dna));
      const a = [...initialBlockValues(planBlock(dna, { dModel: 32, seqLen: 4 }), 3).values()];
      const b = [...initialBlockValues(planBlock(other, { dModel: 32, seqLen: 4 }), 3).values()];
      expect(b).toEqual(a);
    }
  });

  it('of a part stay put when another part of the program changes', () => {
    const dna = seedDna();
    const plan = planBlock(dna, { dModel: 32, seqLen: 4 });
    // swap the feed-forward activation: attention and normalisation weights must not move
    const edited = structuredClone(dna);
    const relu = edited.subprograms.find((s) => s.name === 'relu')!;
    expect(relu.instructions[0]!.op).toBe('ABS');
    relu.instructions[0]!.op = 'TANH';
    const before = initialBlockValues(plan, 3);
    const after = initialBlockValues(planBlock(edited, { dModel: 32, seqLen: 4 }), 3);
    const attention = [...before.keys()].filter((k) => k.includes('attention'));
    expect(attention.length).toBeGreaterThan(3);
    for (const k of attention) expect(after.get(k), k).toEqual(before.get(k));
    // and the parameters that read the changed activation's output do start elsewhere
    expect([...before.keys()].some((k) => !k.includes('attention') && JSON.stringify(after.get(k)) !== JSON.stringify(before.get(k)))).toBe(true);
    // two projections of the same input in one head (Q and K) still start apart
    const q = before.get(attention.find((k) => k.endsWith('CONV_1X1.kernel'))!)!;
    const kernels = attention.filter((k) => k.endsWith('CONV_1X1.kernel')).map((k) => before.get(k)!);
    expect(kernels.filter((k) => JSON.stringify(k) === JSON.stringify(q))).toHaveLength(1);
  });
});

describe('planBlock', () => {
  it('counts the vanilla block exactly as the hand formula does', () => {
    const d = 128;
    const plan = planBlock(seedDna(), { dModel: d, seqLen: 64 });
    // 2 layer norms (scale+shift), 4 heads x (q,k,v) d x d/4, output d x d, FFN d x 4d + 4d + 4d x d + d
    const expected = 2 * 2 * d + 4 * 3 * d * (d / 4) + d * d + (d * 4 * d + 4 * d + 4 * d * d + d);
    expect(plan.estimate.parameters).toBe(expected);
    expect(plan.params.map((p) => p.name)).toContain('h2:multi_head_attention/h2[3]:attention_head/h4:CONV_1X1.kernel');
    expect(plan.params.map((p) => p.name)).toContain('h4:layer_norm/h8:SCALE.scale');
  });

  it('estimates FLOPs per token: the matmuls, plus a few percent of elementwise work', () => {
    const d = 128;
    const s = 64;
    const plan = planBlock(seedDna(), { dModel: d, seqLen: s });
    const projections = 2 * (3 * d * d + d * d + 2 * d * 4 * d);
    const attention = 2 * (2 * s * d); // q.k over s keys and a.v, all heads together
    const matmuls = projections + attention;
    expect(plan.estimate.forwardFlopsPerToken).toBeGreaterThan(matmuls);
    expect(plan.estimate.forwardFlopsPerToken).toBeLessThan(matmuls * 1.1);
  });

  it('refuses a block over the limits, saying by how much', () => {
    expect(() => planBlock(seedDna(), { dModel: 128, seqLen: 64 }, { limits: { maxParameters: 1000 } })).toThrow(
      /the block has 197,760 parameters at dModel 128, over the limit of 1,000/,
    );
    const wide = seedDna();
    wide.subprograms[4]!.instructions[0]!.branching = 16; // 16 x 32u FFN
    let err: unknown;
    try {
      planBlock(wide, { dModel: 512, seqLen: 512 }, { limits: { maxActivationBytesPerSequence: 64 * 2 ** 20 } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CompileError);
    expect((err as CompileError).code).toBe('MODEL_TOO_LARGE');
    expect((err as Error).message).toMatch(/activations take [\d.]+ MiB per sequence .* over the limit of 64\.0 MiB/);
  });

  it('refuses bad sizes and invalid DNA with typed errors', () => {
    expect(() => planBlock(seedDna(), { dModel: 100, seqLen: 8 })).toThrow(/dModel must be a positive multiple of 16/);
    const bad = seedDna();
    bad.subprograms[0]!.instructions[0]!.op = 'NOPE';
    expect(() => planBlock(bad, { dModel: 64, seqLen: 8 })).toThrow(/unknown op "NOPE"/);
  });
});

describe('compileBlock', () => {
  it('maps [batch, seq, dModel] to the same shape, seeded, without leaking tensors', () => {
    const a = compileBlock(seedDna(), { tf, dModel: 32, seqLen: 6, seed: 1 });
    const b = compileBlock(seedDna(), { tf, dModel: 32, seqLen: 6, seed: 1 });
    const c = compileBlock(seedDna(), { tf, dModel: 32, seqLen: 6, seed: 2 });
    const x = tf.randomNormal([2, 6, 32], 0, 1, 'float32', 7);
    // the first call caches the causal mask of this shape (one tensor); later calls add nothing
    tf.tidy(() => a.apply(x));
    const before = tfjs.memory().numTensors;
    const ya = tf.tidy(() => Array.from(a.apply(x).dataSync()));
    expect(tfjs.memory().numTensors).toBe(before);
    const yb = tf.tidy(() => Array.from(b.apply(x).dataSync()));
    const yc = tf.tidy(() => Array.from(c.apply(x).dataSync()));
    expect(ya).toHaveLength(2 * 6 * 32);
    expect(ya).toEqual(yb);
    expect(ya).not.toEqual(yc);
    expect(ya.every(Number.isFinite)).toBe(true);
    for (const blk of [a, b, c]) blk.dispose();
    x.dispose();
  });

  it('gives each parameter its initialiser (SCALE starts at 1, DCONV at the Primer kernel)', () => {
    const values = initialBlockValues(planBlock(seedDna(), { dModel: 32, seqLen: 4 }), 3);
    expect(Array.from(values.get('h1:layer_norm/h8:SCALE.scale')!)).toEqual(new Array(32).fill(1));
    const kernel = values.get('h2:multi_head_attention/h3:CONV_1X1.kernel')!;
    const limit = Math.sqrt(6 / 64);
    expect(kernel.every((v) => Math.abs(v) <= limit)).toBe(true);
  });
});

describe('the training memory estimate', () => {
  const chain = (n: number) => opChain(n, 'TANH');
  const wide = wideProjections();

  it('is within 0.6-2.5x of what tf.profile sees at the peak of a training step (plus the two moments of Adam)', async () => {
    const rng = Rng.create(5);
    const cases: unknown[] = [seedDna(), chain(100), wide, ...Array.from({ length: 3 }, () => mutateDna(seedDna(), rng, { requireValid: true }).child)];
    for (const [batch, seqLen, dModel, vocabSize] of [[8, 32, 64, 256], [4, 64, 32, 1024]] as const) {
      for (const dna of cases) {
        const lm = compileLanguageModel(dna, { tf, vocabSize, layers: 2, dModel, seqLen, seed: 1, batch });
        const x = tfjs.zeros([batch, seqLen], 'int32');
        const before = tfjs.memory().numBytes;
        const profile = await tfjs.profile(() => {
          const { value, grads } = tfjs.variableGrads(() => lm.loss(x as never, x as never) as never, lm.variables as never);
          tfjs.dispose([value, ...Object.values(grads)]);
        });
        const measured = profile.peakBytes - before + 2 * 4 * lm.estimate.parameters;
        const ratio = lm.estimate.trainingBytes! / measured;
        expect(ratio, `batch ${batch}: ${(measured / 1e6).toFixed(1)} MB measured`).toBeGreaterThan(0.6);
        expect(ratio).toBeLessThan(2.5);
        lm.dispose();
        x.dispose();
      }
    }
  }, 180_000);

  it('bounds the largest tensor of a training step (what a GPU binds as one buffer) from above, within 1.25x of tf.profile\'s largest', async () => {
    const rng = Rng.create(6);
    const cases: unknown[] = [seedDna(), wide, ...Array.from({ length: 2 }, () => mutateDna(seedDna(), rng, { requireValid: true }).child)];
    // attention's scores the largest, then the logits, then the embedding, then a projection's weight
    for (const [batch, seqLen, dModel, vocabSize] of [[4, 64, 32, 64], [4, 16, 32, 1024], [1, 4, 32, 2048], [1, 4, 256, 16]] as const) {
      for (const dna of cases) {
        const lm = compileLanguageModel(dna, { tf, vocabSize, layers: 2, dModel, seqLen, seed: 1, batch });
        const x = tfjs.zeros([batch, seqLen], 'int32');
        const profile = await tfjs.profile(() => {
          const { value, grads } = tfjs.variableGrads(() => lm.loss(x as never, x as never) as never, lm.variables as never);
          tfjs.dispose([value, ...Object.values(grads)]);
        });
        const size = (shape: number[] | undefined) => (shape ?? []).reduce((a, b) => a * b, 1);
        const largest = 4 * Math.max(...profile.kernels.flatMap((k) => [...k.outputShapes, ...k.inputShapes].map((s) => size(s as number[]))));
        const ratio = lm.estimate.largestTensorBytes! / largest;
        expect(ratio, `batch ${batch}, seq ${seqLen}, vocab ${vocabSize}: ${largest} bytes measured`).toBeGreaterThanOrEqual(1);
        expect(ratio).toBeLessThanOrEqual(1.25);
        lm.dispose();
        x.dispose();
      }
    }
  });

  it('refuses a model with a tensor over maxTensorBytes before allocating, naming both sizes', () => {
    const tensors = tfjs.memory().numTensors;
    const options = { tf, vocabSize: 256, layers: 1, dModel: 32, seqLen: 64, seed: 1, batch: 8 };
    // vanilla's attention scores: 4 heads x 64 x 64 floats per sequence, 8 sequences: 0.5 MiB
    expect(() => compileLanguageModel(seedDna(), { ...options, limits: { maxTensorBytes: 2 ** 19 - 1 } })).toThrow(
      /this model's largest tensor is estimated at 0\.5 MiB \(batch 8, seqLen 64, vocabulary 256\), over the backend's largest buffer of 0\.5 MiB/,
    );
    expect(tfjs.memory().numTensors).toBe(tensors);
    compileLanguageModel(seedDna(), { ...options, limits: { maxTensorBytes: 2 ** 19 } }).dispose();
  });

  it('refuses a model that would not fit, before allocating anything, naming the sizes and the limit', () => {
    const tensors = tfjs.memory().numTensors;
    const t0 = performance.now();
    const long = chain(DNA_LIMITS.instructions);
    expect(() => compileLanguageModel(long, { tf, vocabSize: 256, layers: 2, dModel: 64, seqLen: 64, seed: 1, batch: 16 })).toThrow(
      /training this model is estimated to hold \d+\.\d\d GiB \(batch 16, seqLen 64, 2 layers, [\d,]+ parameters\), over the limit of 3\.50 GiB/,
    );
    // refused from the estimate, before any weight is made (a guard, with room for a busy machine)
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(tfjs.memory().numTensors).toBe(tensors);
  });
});

describe('compileLanguageModel', () => {
  const config = { vocabSize: 40, layers: 2, dModel: 32, seqLen: 8 };

  it('computes logits [batch, seq, vocab] and a loss near ln(vocab) at initialisation', () => {
    const lm = compileLanguageModel(seedDna(), { tf, ...config, seed: 5 });
    const tokens = tf.tensor2d(Array.from({ length: 16 }, (_, i) => (i * 7) % 40), [2, 8], 'int32');
    const targets = tf.tensor2d(Array.from({ length: 16 }, (_, i) => (i * 3) % 40), [2, 8], 'int32');
    const z = lm.logits(tokens);
    expect(z.shape).toEqual([2, 8, 40]);
    const loss = lm.loss(tokens, targets).dataSync()[0]!;
    expect(Math.abs(loss - Math.log(40))).toBeLessThan(1.5);
    expect(lm.estimate.parameters).toBe(40 * 32 + 2 * planBlock(seedDna(), config).estimate.parameters + 2 * 32);
    z.dispose();
    lm.dispose();
  });

  it('sends a gradient to every variable', () => {
    const lm = compileLanguageModel(seedDna(), { tf, ...config, seed: 6 });
    const tokens = tf.tensor2d(Array.from({ length: 16 }, (_, i) => (i * 5) % 40), [2, 8], 'int32');
    const targets = tf.tensor2d(Array.from({ length: 16 }, (_, i) => (i * 11) % 40), [2, 8], 'int32');
    const { grads } = tfjs.variableGrads(() => lm.loss(tokens, targets) as never, lm.variables as never);
    const silent = [...lm.namedVariables].filter(([, v]) => {
      const g = grads[v.name];
      return !g || tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]) === 0;
    });
    expect(silent.map(([name]) => name)).toEqual([]);
    expect(lm.namedVariables.has('layer1/h2:multi_head_attention/h2[0]:attention_head/h2:CONV_1X1.kernel')).toBe(true);
    lm.dispose();
  });

  it('computes cross-entropy and its gradient as the plain formulation does', () => {
    const rng = Rng.create(4);
    const z: Tensor = tf.tensor2d(Array.from({ length: 6 * 9 }, () => rng.normal(0, 3)), [6, 9]);
    const t = tf.oneHot(tf.tensor1d([0, 3, 8, 2, 2, 5], 'int32'), 9);
    const plain = (v: Tensor) => tf.mean(tf.sub(tf.logSumExp(v, 1), tf.sum(tf.mul(v, t), 1)));
    const [a, b] = tf.tidy(() => [softmaxCrossEntropy(tf, z, t).dataSync()[0]!, plain(z).dataSync()[0]!]);
    expect(a).toBeCloseTo(b, 5);
    const ga = tf.tidy(() => Array.from(tf.grad((v: Tensor) => softmaxCrossEntropy(tf, v, t))(z).dataSync()));
    const gb = tf.tidy(() => Array.from(tf.grad(plain)(z).dataSync()));
    ga.forEach((g, i) => expect(g).toBeCloseTo(gb[i]!, 6));
  });

  it('uses the Tensor2Tensor timing signal', () => {
    const s = timingSignal(3, 4);
    expect(s[0]).toBe(0); // sin(0)
    expect(s[2]).toBe(1); // cos(0)
    expect(s[4 + 0]).toBeCloseTo(Math.sin(1), 6);
    expect(s[4 + 1]).toBeCloseTo(Math.sin(1 / 10_000), 6);
  });
});

describe('causality', () => {
  const config = { vocabSize: 30, layers: 2, dModel: 32, seqLen: 8 };
  const changedBefore = (dna: Dna, seed: number): number[] => {
    const lm = compileLanguageModel(dna, { tf, ...config, seed });
    const rng = Rng.create(seed);
    const base = Array.from({ length: 8 }, () => rng.int(0, 29));
    const bad: number[] = [];
    const logitsOf = (toks: number[]) => tf.tidy(() => lm.logits(tf.tensor2d(toks, [1, 8], 'int32')).arraySync() as number[][][]);
    const y0 = logitsOf(base);
    for (let t = 1; t < 8; t++) {
      const changed = [...base];
      changed[t] = (changed[t]! + 1 + rng.int(0, 27)) % 30;
      const y1 = logitsOf(changed);
      for (let p = 0; p < t; p++) {
        for (let v = 0; v < 30; v++) {
          const a = y0[0]![p]![v]!;
          const b = y1[0]![p]![v]!;
          if (!(Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(a))) && !(Number.isNaN(a) && Number.isNaN(b))) bad.push(t * 100 + p);
        }
      }
    }
    lm.dispose();
    return [...new Set(bad)];
  };

  it('holds for the vanilla seed: changing token t leaves logits before t unchanged', () => {
    expect(changedBefore(seedDna(), 1)).toEqual([]);
  });

  it('holds for random valid mutants', () => {
    const rng = Rng.create(77);
    let dna = seedDna();
    for (let i = 0; i < 12; i++) {
      const child = mutateDna(dna, rng, { requireValid: true }).child;
      expect(changedBefore(child, i), `mutant ${i}`).toEqual([]);
      dna = child;
    }
  });
});

/** Every way a branched call runs its lanes: nested branched calls, ops with and without `applyLanes`, tiled and projected inputs. */
function lanesDna(): Dna {
  const b = new DnaBuilder('lanes');
  const inner = b.subprogram('inner', (s, x, y) => {
    // CONV_3X1 has no applyLanes: run once per lane
    const c = s.op('CONV_3X1', y, undefined, { dim: 2 });
    return s.op('ADD', s.op('SCALE', s.op('CONV_1X1', x, undefined, { dim: 2 })), c);
  });
  const head = b.subprogram('head', (s, x, y) => {
    const q = s.op('DCONV_3X1', s.op('CONV_1X1', x, undefined, { dim: 2 }));
    const k = s.op('SHIFT', s.op('CONV_1X1', y, undefined, { dim: 2 }));
    const v = s.call(inner, q, x, { branching: 2 });
    const scores = s.op('EXP', s.op('MASK', s.op('T_MAT_MUL', q, k)));
    return s.op('MAT_MUL', s.op('DIVIDE', scores, s.op('RED_SUM', scores)), s.op('SQUARE', v));
  });
  b.main((s, x) => {
    const n = s.op('TANH', x);
    return s.op('ADD', x, s.op('CONV_1X1', s.call(head, n, x, { branching: 4 }), undefined, { dim: 8 }));
  });
  const r = validateDna(b.build());
  if (!r.ok) throw r.error;
  return r.dna;
}

describe('fused projections and stacked branches', () => {
  // the reference runs every branch and every CONV_1X1 on its own
  const lossAndGrads = (dna: Dna, options: { fuseProjections: boolean; stackBranches: boolean }) => {
    const lm = compileLanguageModel(dna, { tf, vocabSize: 37, layers: 2, dModel: 32, seqLen: 9, seed: 4, ...options });
    try {
      const rng = Rng.create(9);
      const tokens = tfjs.tensor2d(Array.from({ length: 3 * 9 }, () => rng.int(0, 36)), [3, 9], 'int32');
      const { value, grads } = tfjs.variableGrads(() => lm.loss(tokens as never, tokens as never) as never, lm.variables as never);
      const named = [...lm.namedVariables].map(([name, v]) => [name, grads[(v as unknown as { name: string }).name]!.arraySync()] as const);
      return { loss: value.dataSync()[0]!, grads: new Map(named) };
    } finally {
      lm.dispose();
    }
  };
  const baselineDnas = ['vanilla', 'primer', 'primer-ez'].map((name) =>
    JSON.parse(readFileSync(new URL(`../../../examples/dna/${name}.json`, import.meta.url), 'utf8')) as Dna,
  );

  it('give the loss and gradients of one product per projection and one run per branch, on the baselines and on mutants', () => {
    const rng = Rng.create(12);
    const mutants = Array.from({ length: 3 }, () => mutateDna(seedDna(), rng, { requireValid: true }).child);
    for (const dna of [...baselineDnas, lanesDna(), ...mutants]) {
      const a = lossAndGrads(dna, { fuseProjections: false, stackBranches: false });
      for (const options of [
        { fuseProjections: true, stackBranches: false },
        { fuseProjections: false, stackBranches: true },
        { fuseProjections: true, stackBranches: true },
      ]) {
        const b = lossAndGrads(dna, options);
        const what = `${dna.name ?? 'mutant'} ${JSON.stringify(options)}`;
        expect(b.loss, what).toBeCloseTo(a.loss, 5);
        for (const [name, g] of a.grads) {
          const flatA = (g as number[]).flat(3) as number[];
          const flatB = (b.grads.get(name) as number[]).flat(3) as number[];
          expect(flatB.length, `${what} ${name}`).toBe(flatA.length);
          flatA.forEach((x, i) => expect(Math.abs(x - flatB[i]!), `${what} ${name}`).toBeLessThan(1e-5 + 1e-4 * Math.abs(x)));
        }
      }
    }
  }, 180_000);

  it('run the parameter-free part of attention once for all heads', async () => {
    const kernels = async (stackBranches: boolean) => {
      const lm = compileLanguageModel(baselineDnas[0]!, { tf, vocabSize: 37, layers: 1, dModel: 32, seqLen: 9, seed: 4, stackBranches });
      const tokens = tfjs.zeros([2, 9], 'int32');
      const p = await tfjs.profile(() => lm.logits(tokens as never) as never);
      lm.dispose();
      tokens.dispose();
      const count = (name: string) => p.kernels.filter((k) => k.name === name).length;
      return { products: count('BatchMatMul'), exp: count('Exp'), all: p.kernels.length };
    };
    const perHead = await kernels(false);
    const stacked = await kernels(true);
    // vanilla, 4 heads: the scores and value products (8) become 2, the softmax's Exp (4) one
    expect(perHead.products - stacked.products).toBe(6);
    expect(perHead.exp - stacked.exp).toBe(3);
    // and the forward pass has 115 kernel calls instead of 197
    expect(stacked.all).toBeLessThan(perHead.all * 0.65);
  });

  it('replace the per-head products of attention with one per layer', async () => {
    const products = async (fuseProjections: boolean) => {
      const lm = compileLanguageModel(baselineDnas[0]!, { tf, vocabSize: 37, layers: 1, dModel: 32, seqLen: 9, seed: 4, fuseProjections, stackBranches: false });
      const tokens = tfjs.zeros([2, 9], 'int32');
      const p = await tfjs.profile(() => lm.logits(tokens as never) as never);
      lm.dispose();
      tokens.dispose();
      return p.kernels.filter((k) => k.name === 'BatchMatMul').length;
    };
    const unfused = await products(false);
    const fused = await products(true);
    // vanilla: the 4 heads' q, k and v products (12) become one
    expect(unfused - fused).toBe(11);
  });
});

describe('fused chains (softmaxChains, normalizeChains)', () => {
  const subprograms = (plan: ReturnType<typeof planBlock>) => {
    const all: SubprogramPlan[] = [];
    const walk = (sp: SubprogramPlan) => {
      all.push(sp);
      for (const n of sp.nodes) if (n.kind === 'call') n.branches.forEach(walk);
    };
    walk(plan.root);
    return all;
  };
  const chains = (dna: Dna) =>
    subprograms(planBlock(dna, { dModel: 32, seqLen: 9 })).flatMap((sp) => [...softmaxChains(sp)].map(([k, c]) => ({ sub: sp.name, k, input: c.input, skip: [...c.skip].sort() })));

  it('finds the causal softmax of every head and nothing else', () => {
    const found = chains(seedDna());
    // 4 heads, each calling causal_softmax once: the chain is the callee's six nodes, reading h0
    expect(found).toHaveLength(4);
    for (const c of found) expect(c).toEqual({ sub: 'causal_softmax', k: 5, input: 0, skip: [0, 1, 2, 3, 4] });
  });

  it('finds the normalisation of both layer norms, and none in the Primer norm', () => {
    const found = (dna: Dna) =>
      subprograms(planBlock(dna, { dModel: 32, seqLen: 9 })).flatMap((sp) => [...normalizeChains(sp)].map(([k, c]) => ({ sub: sp.name, k, kind: c.kind, input: c.input, skip: [...c.skip].sort() })));
    // layer_norm: RED_MEAN, DIFFERENCE, SQUARE, RED_MEAN, ABS_ROOT, DIVIDE, then SCALE and SHIFT (not fused)
    expect(found(seedDna())).toEqual([0, 1].map(() => ({ sub: 'layer_norm', k: 5, kind: 'normalize', input: 0, skip: [0, 1, 2, 3, 4] })));
    const primer = JSON.parse(readFileSync(new URL('../../../examples/dna/primer.json', import.meta.url), 'utf8')) as Dna;
    expect(found(primer)).toEqual([]);
  });

  it('leaves a chain alone when one of its intermediate states is read elsewhere or it is built differently', () => {
    const b = new DnaBuilder('softmax variants');
    const leaky = b.subprogram('leaky', (s, x) => {
      const m = s.op('MASK', x);
      const e = s.op('EXP', s.op('DIFFERENCE', m, s.op('RED_MAX', m)));
      // the exponentials are read again after the division
      return s.op('ADD', s.op('DIVIDE', e, s.op('RED_SUM', e)), e);
    });
    const minFirst = b.subprogram('min_first', (s, x) => {
      const m = s.op('MASK', x);
      const e = s.op('EXP', s.op('DIFFERENCE', m, s.op('RED_MIN', m)));
      return s.op('DIVIDE', e, s.op('RED_SUM', e));
    });
    b.main((s, x) => {
      const q = s.op('CONV_1X1', x, undefined, { dim: 8 });
      const scores = s.op('T_MAT_MUL', q, x);
      return s.op('ADD', s.op('MAT_MUL', s.call(leaky, scores), x), s.op('MAT_MUL', s.call(minFirst, scores), x));
    });
    const r = validateDna(b.build());
    if (!r.ok) throw r.error;
    expect(chains(r.dna)).toEqual([]);
  });
});
