import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { baselineDna } from '@primer-search/baselines';
import { FUSED_CAUSAL_SOFTMAX, compileLanguageModel, type LanguageModel } from '@primer-search/compiler';
import { DnaBuilder } from '@primer-search/dna';
import { BatchSampler, brown, byteTokenizer, evaluationBatches, tokenStream } from '@primer-search/datasets';
import { describe, expect, it } from 'vitest';
import { backends, fastBatchMatMulWasm, nativeProductsOn, selectBackend, trainingMemoryLimit, type BackendPlugin } from './backends/index.js';
import { formatBudget, parseBudget, type TrainConfig } from '@primer-search/study';
import { readCheckpoint } from './checkpoint.js';
import { learningRate } from './optimizers.js';
import { evaluate, inContextScore, trainModel } from './train.js';

const backend = await selectBackend();
const SEQ = 32;
const corpus = brown.open();
const tokenizer = byteTokenizer();
const trainStream = tokenStream(corpus, 'train', tokenizer);
const validation = evaluationBatches(tokenStream(corpus, 'validation', tokenizer), 16, SEQ, 32);

const tiny = (name = 'vanilla', seed = 1): LanguageModel =>
  compileLanguageModel(baselineDna(name, { dModel: 32 }), { tf: tf as never, vocabSize: tokenizer.vocabSize, layers: 1, dModel: 32, seqLen: SEQ, seed });

async function train(model: LanguageModel, steps: number, config: Partial<TrainConfig> = {}) {
  return trainModel({ model, sampler: new BatchSampler(trainStream, 8, SEQ, 5), evaluation: validation, budget: { kind: 'steps', steps }, config });
}

describe('selectBackend', () => {
  it('falls back past the absent native backends to wasm, saying why', () => {
    expect(backend.choice).toBe('wasm');
    expect(backend.skipped.map((s) => s.choice)).toEqual(['tfjs-node-gpu', 'tfjs-node']);
    expect(backend.skipped[0]!.reason).toContain('@tensorflow/tfjs-node-gpu is not installed');
  });

  it('refuses a forced backend that cannot start, and unknown names', async () => {
    await expect(selectBackend('tfjs-node')).rejects.toThrow(/backend tfjs-node is not available: @tensorflow\/tfjs-node is not installed/);
    await expect(selectBackend('webgl' as never)).rejects.toThrow(/unknown backend "webgl" \(did you mean "webgpu"\?\)/);
    expect((await selectBackend('wasm')).tfBackend).toBe('wasm');
  });

  it('picks the wasm variants by name, each with its kernels and its products line', async () => {
    try {
      const xnn = await selectBackend('wasm-xnnpack');
      expect([xnn.tfBackend, xnn.products]).toEqual(['wasm', 'XNNPACK (wasm)']);
      expect(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc).toBe(fastBatchMatMulWasm);
      expect(nativeProductsOn()).toBe(false);
      const stock = await selectBackend('wasm-stock');
      expect(stock.products).toBe('XNNPACK (wasm, stock kernels)');
      expect(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc).not.toBe(fastBatchMatMulWasm);
      expect(tf.getKernel(FUSED_CAUSAL_SOFTMAX, 'wasm')).toBeUndefined();
      // the training kernel stock wasm lacks stays
      expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
    } finally {
      const back = await selectBackend('wasm');
      expect(back.products).toBe(backend.products);
      expect(tf.getKernel(FUSED_CAUSAL_SOFTMAX, 'wasm')).toBeDefined();
    }
  });

  it('takes backends a plugin registers: chosen by name, refused with its reason, its memory limit used', async () => {
    const started: string[] = [];
    const plugin = (ok: boolean): BackendPlugin => ({
      specificationVersion: 1,
      description: 'the cpu backend under another name',
      activate: async (t) => {
        started.push(ok ? 'ok' : 'refused');
        if (!ok) return { ok: false, reason: 'no such device here' };
        await t.setBackend('cpu');
        return { ok: true, products: 'JavaScript (plugin)' };
      },
      memoryLimit: () => 12345,
    });
    backends.register('test-plugin', plugin(true));
    backends.register('test-absent', plugin(false));
    try {
      const b = await selectBackend('test-plugin');
      expect([b.choice, b.tfBackend, b.products]).toEqual(['test-plugin', 'cpu', 'JavaScript (plugin)']);
      expect(trainingMemoryLimit('test-plugin')).toBe(12345);
      await expect(selectBackend('test-absent')).rejects.toThrow(/backend test-absent is not available: no such device here/);
      await expect(selectBackend("test-plugn")).rejects.toThrow(/did you mean "test-plugin"\?/);
      expect(() => backends.register('test-bad', { specificationVersion: 1 } as never)).toThrow(/activate\(tf\) must be a function/);
      // a plugin backend is never picked automatically
      expect((await selectBackend()).choice).toBe('wasm');
      expect(started).toEqual(['ok', 'refused']);
    } finally {
      backends.unregister('test-plugin');
      backends.unregister('test-absent');
      await selectBackend('wasm');
    }
  });
});

describe('trainModel', () => {
  it('lowers the validation loss of a tiny model on the Brown corpus, with Adam and with Adafactor', async () => {
    for (const [optimizer, lr] of [['adam', 3e-3], ['adafactor', 1e-2]] as const) {
      const model = tiny();
      const untrained = await train(model, 1, { optimizer, learningRate: 0, checkpoints: [] });
      const r = await train(model, 300, { optimizer, learningRate: lr, warmupSteps: 30 });
      expect(r.status).toBe('completed');
      expect(r.steps).toBe(300);
      expect(r.tokens).toBe(300 * 8 * SEQ);
      // bytes: ln(257) = 5.55 nats untrained; a tiny model learns letter statistics fast
      expect(untrained.final!.loss).toBeGreaterThan(4.5);
      expect(r.final!.loss, optimizer).toBeLessThan(3.2);
      expect(r.final!.loss).toBeLessThan(untrained.final!.loss - 1.5);
      expect(r.evaluations.map((e) => e.step)).toEqual([75, 150, 225, 300]);
      model.dispose();
    }
  });

  it('a model compiled, trained and disposed leaves nothing: no tensor, no byte (its initial weights included)', async () => {
    // the validation batches are made tensors once, at their first evaluation, and kept for all runs
    const warm = tiny();
    await train(warm, 1);
    warm.dispose();
    const before = tf.memory();
    for (const name of ['vanilla', 'primer', 'primer-ez']) {
      const model = tiny(name);
      await train(model, 2);
      await train(model, 2, { optimizer: 'adafactor' });
      model.dispose();
    }
    expect([tf.memory().numTensors, tf.memory().numBytes]).toEqual([before.numTensors, before.numBytes]);
  });

  it('leaves no tensors behind', async () => {
    const model = tiny();
    await train(model, 2);
    const before = tf.memory().numTensors;
    await train(model, 20, { optimizer: 'adafactor' });
    await train(model, 20, { optimizer: 'adam' });
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('stops a diverging run and says where', async () => {
    // A candidate that overflows float32: the running product of 1000 x its input.
    const b = new DnaBuilder('overflow');
    b.main((s, x) => s.op('ADD', x, s.op('CUM_PROD', s.op('C_MUL', x, undefined, { constant: 1000 }))));
    const model = compileLanguageModel(b.build(), { tf: tf as never, vocabSize: tokenizer.vocabSize, layers: 1, dModel: 32, seqLen: SEQ, seed: 1 });
    const before = tf.memory().numTensors;
    const r = await train(model, 200);
    expect(r.status).toBe('diverged');
    expect(r.divergence).toEqual({ step: 0, what: 'training loss' });
    expect(r.final).toBeUndefined();
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('respects time and token budgets', async () => {
    const model = tiny();
    const byTokens = await trainModel({ model, sampler: new BatchSampler(trainStream, 8, SEQ, 1), evaluation: validation, budget: { kind: 'tokens', tokens: 10 * 8 * SEQ } });
    expect(byTokens.steps).toBe(10);
    const byTime = await trainModel({
      model,
      sampler: new BatchSampler(trainStream, 8, SEQ, 1),
      evaluation: validation,
      budget: { kind: 'seconds', seconds: 1.5 },
      config: { checkpoints: [0.5] },
    });
    expect(byTime.trainSeconds).toBeGreaterThanOrEqual(1.5);
    // the checkpoint at half the time budget, then the end
    expect(byTime.evaluations).toHaveLength(2);
    expect(byTime.evaluations[0]!.seconds).toBeGreaterThanOrEqual(0.75);
    expect(byTime.evaluations[0]!.seconds).toBeLessThan(1.5);
    expect(byTime.trainSeconds).toBeLessThan(3);
    expect(byTime.tokensPerSecond).toBeGreaterThan(0);
    model.dispose();
  });

  it('respects FLOP budgets: the steps the estimate pays for, the same on every run, fewer for a dearer program', async () => {
    const run = async (name: string, flops: number) => {
      const model = tiny(name);
      const r = await trainModel({ model, sampler: new BatchSampler(trainStream, 8, SEQ, 1), evaluation: validation, budget: { kind: 'flops', flops }, config: { checkpoints: [0.5] } });
      const perStep = 8 * SEQ * model.estimate.trainingFlopsPerToken;
      model.dispose();
      return { r, perStep };
    };
    const { r, perStep } = await run('vanilla', 1e9);
    // the first step at or past the budget ends it
    expect(r.steps).toBe(Math.ceil(1e9 / perStep));
    expect(r.evaluations.map((e) => e.flops)).toEqual([Math.ceil(0.5e9 / perStep) * perStep, r.steps * perStep]);
    expect((await run('vanilla', 1e9)).r.steps).toBe(r.steps);
    // Primer-EZ's depthwise convolutions cost FLOPs: no more steps than vanilla
    const ez = await run('primer-ez', 1e9);
    expect(ez.perStep).toBeGreaterThan(perStep);
    expect(ez.r.steps).toBe(Math.ceil(1e9 / ez.perStep));
    expect(ez.r.steps).toBeLessThanOrEqual(r.steps);
  });
});

describe('checkpoints', () => {
  for (const optimizer of ['adam', 'adafactor'] as const) {
    it(`resume a stopped run exactly where it stopped (${optimizer})`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'primer-ckpt-'));
      const path = join(dir, 'run');
      const config = { optimizer, checkpoints: [0.5] };
      const run = (model: LanguageModel, extra: Record<string, unknown>) =>
        trainModel({ model, sampler: new BatchSampler(trainStream, 4, SEQ, 11), evaluation: validation, budget: { kind: 'steps', steps: 24 }, config, ...extra });

      const whole = tiny('vanilla', 3);
      const straight = await run(whole, {});

      const first = tiny('vanilla', 3);
      const stop = new AbortController();
      const part = await run(first, { checkpoint: { path }, signal: stop.signal, onProgress: (e: { step: number }) => e.step === 9 && stop.abort() });
      expect(part.status).toBe('stopped');
      expect(part.steps).toBe(9);
      first.dispose();

      const second = tiny('vanilla', 99); // other initial weights: the checkpoint must overwrite them
      const resumed = await run(second, { resume: readCheckpoint(path), checkpoint: { path } });
      expect(resumed.status).toBe('completed');
      expect(resumed.steps).toBe(24);
      // both optimizers keep every slot by name and their step count: bit for bit
      const tol = 0;
      const near = (x: number[], y: number[]) => x.every((v, i) => Math.abs(v - y[i]!) <= tol * Math.max(1, Math.abs(y[i]!)));
      expect(resumed.curve).toHaveLength(straight.curve.length);
      expect(near(resumed.curve.map((c) => c.loss), straight.curve.map((c) => c.loss))).toBe(true);
      expect(near([resumed.final!.loss], [straight.final!.loss])).toBe(true);
      const a = [...whole.namedVariables.values()].flatMap((v) => Array.from(v.dataSync()));
      const b = [...second.namedVariables.values()].flatMap((v) => Array.from(v.dataSync()));
      expect(near(b, a)).toBe(true);
      if (tol === 0) expect(b).toEqual(a);
      expect(readCheckpoint(path).step).toBe(24);
      whole.dispose();
      second.dispose();
      // a resume leaves nothing behind either (it left the checkpoint's weights and optimizer slots)
      const before = tf.memory();
      const third = tiny('vanilla', 5);
      await run(third, { resume: readCheckpoint(path), budget: { kind: 'steps', steps: 26 } });
      third.dispose();
      expect([tf.memory().numTensors, tf.memory().numBytes]).toEqual([before.numTensors, before.numBytes]);
    });
  }

  it('refuses a checkpoint of another model, or of other settings, before touching the weights', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-ckpt-'));
    const path = join(dir, 'run');
    const a = tiny('vanilla');
    await trainModel({ model: a, sampler: new BatchSampler(trainStream, 4, SEQ, 1), evaluation: validation, budget: { kind: 'steps', steps: 2 }, checkpoint: { path } });
    const b = tiny('primer-ez');
    await expect(
      trainModel({ model: b, sampler: new BatchSampler(trainStream, 4, SEQ, 1), evaluation: validation, budget: { kind: 'steps', steps: 4 }, resume: readCheckpoint(path) }),
    ).rejects.toThrow(/another model/);
    const c = tiny('vanilla');
    await trainModel({ model: c, sampler: new BatchSampler(trainStream, 4, SEQ, 1), evaluation: validation, budget: { kind: 'steps', steps: 2 }, checkpoint: { path }, context: { batch: 4 } });
    await expect(
      trainModel({ model: c, sampler: new BatchSampler(trainStream, 8, SEQ, 1), evaluation: validation, budget: { kind: 'steps', steps: 4 }, resume: readCheckpoint(path), context: { batch: 8 } }),
    ).rejects.toThrow('the checkpoint was made with other settings: batch 4 (now 8)');
    // training settings and the optimizer are compared too, and a refusal leaves the weights as they were
    const fresh = tiny('vanilla', 7);
    const before = [...fresh.namedVariables.values()].map((v) => Array.from(v.dataSync()));
    const resume = (config: Partial<TrainConfig>) =>
      trainModel({ model: fresh, sampler: new BatchSampler(trainStream, 4, SEQ, 1), evaluation: validation, budget: { kind: 'steps', steps: 4 }, resume: readCheckpoint(path), context: { batch: 4 }, config });
    await expect(resume({ learningRate: 0.01 })).rejects.toThrow('the checkpoint was made with other settings: learningRate 0.002 (now 0.01)');
    await expect(resume({ optimizer: 'adafactor' })).rejects.toThrow(/optimizer "adam" \(now "adafactor"\)/);
    await expect(resume({ checkpoints: [0.5] })).rejects.toThrow(/checkpoints \[0.25,0.5,0.75\] \(now \[0.5\]\)/);
    expect([...fresh.namedVariables.values()].map((v) => Array.from(v.dataSync()))).toEqual(before);
    fresh.dispose();
    c.dispose();
    writeFileSync(join(path, 'checkpoint.json'), '{"format": "x"}');
    expect(() => readCheckpoint(path)).toThrow(/not a primer-search training checkpoint/);
    writeFileSync(join(dir, 'old.json'), '{}');
    expect(() => readCheckpoint(join(dir, 'old.json'))).toThrow(/is a file, not a checkpoint folder/);
    a.dispose();
    b.dispose();
  });
});

describe('budgets and schedules', () => {
  it('parses budgets people write', () => {
    expect(parseBudget('2m')).toEqual({ kind: 'seconds', seconds: 120 });
    expect(parseBudget('90s')).toEqual({ kind: 'seconds', seconds: 90 });
    expect(parseBudget('500steps')).toEqual({ kind: 'steps', steps: 500 });
    expect(parseBudget('500 steps')).toEqual({ kind: 'steps', steps: 500 });
    expect(parseBudget('200ktokens')).toEqual({ kind: 'tokens', tokens: 200_000 });
    expect(parseBudget('1.5h')).toEqual({ kind: 'seconds', seconds: 5400 });
    expect(() => parseBudget('soon')).toThrow(/cannot read the budget "soon"/);
    expect(formatBudget(parseBudget('3 steps'))).toBe('3 steps');
    expect(parseBudget('2e13flops')).toEqual({ kind: 'flops', flops: 2e13 });
    expect(parseBudget('2E13 FLOPs')).toEqual({ kind: 'flops', flops: 2e13 });
    expect(parseBudget('20tflops')).toEqual({ kind: 'flops', flops: 2e13 });
    expect(parseBudget('1.5gflops')).toEqual({ kind: 'flops', flops: 1.5e9 });
    expect(formatBudget(parseBudget('2e13flops'))).toBe('2e13 FLOPs');
    expect(formatBudget({ kind: 'flops', flops: 1.25e12 })).toBe('1.25e12 FLOPs');
    expect(() => parseBudget('2e13')).toThrow(/2e13flops/);
  });

  it('warms up linearly, then decays as the inverse square root', () => {
    expect(learningRate(0, 1, 10)).toBeCloseTo(0.1);
    expect(learningRate(9, 1, 10)).toBeCloseTo(1);
    expect(learningRate(39, 1, 10)).toBeCloseTo(0.5);
  });
});

describe('the in-context score', () => {
  it('is the mean loss over the first eighth of the positions minus over the last eighth, by hand', () => {
    // 16 positions: the first two 5 and 4, the last two 2 and 1
    const table = [5, 4, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 1];
    expect(inContextScore(table)).toBe(3);
    // fewer than 8 positions: the first against the last
    expect(inContextScore([4, 9, 9, 1])).toBe(3);
    // a model that ignores its context: the same loss everywhere
    expect(inContextScore(new Array(64).fill(2.5))).toBe(0);
    expect(inContextScore([3])).toBeNaN();
    expect(inContextScore([])).toBeNaN();
    expect(inContextScore([NaN, 1])).toBeNaN();
  });

  it("comes from the same forward pass as the validation loss, which it leaves unchanged; per-position losses match a hand log-softmax", async () => {
    const model = tiny('vanilla', 3);
    try {
      const batches = validation.slice(0, 2);
      const { loss, inContext } = await evaluate(model, batches);
      // the loss exactly as model.loss gives it
      let total = 0;
      for (const b of batches) {
        total += tf.tidy(() => (model.loss(tf.tensor2d(b.tokens, [b.batch, b.seqLen], 'int32') as never, tf.tensor2d(b.targets, [b.batch, b.seqLen], 'int32') as never) as unknown as tf.Tensor).dataSync()[0]!);
      }
      expect(loss).toBe(total / batches.length);
      // per-position losses from the logits, by hand
      const b = batches[0]!;
      const logits = tf.tidy(() => (model.logits(tf.tensor2d(b.tokens, [b.batch, b.seqLen], 'int32') as never) as unknown as tf.Tensor).dataSync() as Float32Array);
      const V = tokenizer.vocabSize;
      const byHand = new Float64Array(SEQ);
      for (let w = 0; w < b.batch; w++) {
        for (let p = 0; p < SEQ; p++) {
          const row = logits.subarray((w * SEQ + p) * V, (w * SEQ + p + 1) * V);
          const max = Math.max(...row);
          const lse = max + Math.log(row.reduce((s, z) => s + Math.exp(z - max), 0));
          byHand[p]! += (lse - row[b.targets[w * SEQ + p]!]!) / b.batch;
        }
      }
      const r = tf.tidy(() => {
        const out = model.evalLosses(tf.tensor2d(b.tokens, [b.batch, b.seqLen], 'int32') as never, tf.tensor2d(b.targets, [b.batch, b.seqLen], 'int32') as never) as unknown as { loss: tf.Tensor; positions: tf.Tensor };
        return Array.from(out.positions.dataSync());
      });
      for (let p = 0; p < SEQ; p++) expect(r[p]).toBeCloseTo(byHand[p]!, 4);
      // the positions' mean is the loss (every window has every position)
      expect(r.reduce((s, x) => s + x, 0) / SEQ).toBeCloseTo(tf.tidy(() => (model.loss(tf.tensor2d(b.tokens, [b.batch, b.seqLen], 'int32') as never, tf.tensor2d(b.targets, [b.batch, b.seqLen], 'int32') as never) as unknown as tf.Tensor).dataSync()[0]!), 4);
      expect(Number.isFinite(inContext)).toBe(true);
    } finally {
      model.dispose();
    }
  });

  it('is recorded at every evaluation of a training run; a trained Transformer uses its context', async () => {
    const model = tiny('vanilla', 2);
    try {
      const before = (await evaluate(model, validation)).inContext;
      const r = await train(model, 150, { learningRate: 3e-3, warmupSteps: 10 } as Partial<TrainConfig>);
      expect(r.evaluations.length).toBeGreaterThan(0);
      for (const e of r.evaluations) expect(Number.isFinite(e.inContext)).toBe(true);
      // trained: later positions are predicted better than the first ones, by more than at the start
      expect(r.final!.inContext!).toBeGreaterThan(0.01);
      expect(r.final!.inContext!).toBeGreaterThan(before + 0.01);
    } finally {
      model.dispose();
    }
  }, 120_000);
});
