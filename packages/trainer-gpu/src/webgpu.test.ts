// The webgpu backend (Dawn through the npm package `webgpu`) against the cpu backend. On a
// machine without a GPU it runs on Mesa's llvmpipe through Dawn's OpenGL ES backend: CI installs
// libegl1 and libegl-mesa0 and sets PRIMER_REQUIRE_WEBGPU, so there the adapter must start.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { baselineDna, baselines } from '@primer-search/baselines';
import { compileLanguageModel } from '@primer-search/compiler';
import { Rng, blameOf } from '@primer-search/core';
import { builtinPrimitives, type TF } from '@primer-search/primitives';
import { contractCases, defaultInput, randomCall } from '@primer-search/primitives/testing';
import { describe, expect, it } from 'vitest';
import { vanillaMutants } from './__fixtures__/mutants.js';
import { backends, deviceErrorOf, gpuMemoryLimit, selectBackend, tensorMemoryLimit, webgpuAdapter, type SelectedBackend } from './backends/index.js';
import { runExperiment } from './experiment.js';
import { DEFAULT_RUN_SETTINGS, parseBudget } from '@primer-search/study';
import { trainModel } from './train.js';
import { BatchSampler, brown, byteTokenizer, evaluationBatches, tokenStream } from '@primer-search/datasets';

const started: SelectedBackend | Error = await selectBackend('webgpu').catch((e: Error) => e);
if (started instanceof Error) {
  if (process.env.PRIMER_REQUIRE_WEBGPU) throw new Error(`PRIMER_REQUIRE_WEBGPU is set but the webgpu backend did not start: ${started.message}`);
  console.warn(`webgpu.test.ts: the webgpu backend is not tested here: ${started.message}`);
}
const suite = started instanceof Error ? describe.skip : describe;

/** Reads tensors made in `make` (inside a tidy) asynchronously, as a GPU backend must in Node, then frees them. */
async function read(make: () => tf.Tensor[]): Promise<number[]> {
  const ts = tf.tidy(make);
  try {
    const values = await Promise.all(ts.map((t) => t.data()));
    return values.flatMap((v) => Array.from(v as Float32Array));
  } finally {
    tf.dispose(ts);
  }
}

/** Runs `make` on cpu, then on webgpu. */
async function onBoth(make: () => tf.Tensor[]): Promise<{ cpu: number[]; gpu: number[] }> {
  await tf.setBackend('cpu');
  const cpu = await read(make);
  await tf.setBackend('webgpu');
  const gpu = await read(make);
  return { cpu, gpu };
}

/** The largest difference, relative to max(1, |cpu|). */
function worst(gpu: number[], cpu: number[]): number {
  expect(gpu.length).toBe(cpu.length);
  let w = 0;
  for (let i = 0; i < cpu.length; i++) w = Math.max(w, Math.abs(gpu[i]! - cpu[i]!) / Math.max(1, Math.abs(cpu[i]!)));
  return w;
}

describe('webgpu backend pieces that need no adapter', () => {
  it('blames a device error on the program when it is out of memory or a refused kernel, on the machine otherwise', () => {
    const oom = deviceErrorOf('GPUOutOfMemoryError', 'Out of memory creating buffer\n - While calling ...');
    expect([oom.code, oom.message, blameOf(oom)]).toEqual(['OUT_OF_MEMORY', 'out of memory on the GPU: Out of memory creating buffer', 'program']);
    const refused = deviceErrorOf('GPUValidationError', 'Binding size too large');
    expect([refused.code, blameOf(refused)]).toEqual(['DEVICE_REFUSED', 'program']);
    expect(refused.message).toBe('the GPU refused a kernel of this program, so the results since are wrong: Binding size too large');
    const internal = deviceErrorOf('GPUInternalError', 'driver crashed');
    expect([internal.code, blameOf(internal)]).toEqual(['WEBGPU_DEVICE', 'environment']);
    expect(deviceErrorOf(undefined, 'x').message).toContain('an error of unknown kind');
  });

  it('takes the GPU memory from PRIMER_GPU_MEMORY, with or without a unit, and refuses what is not a size', () => {
    expect(gpuMemoryLimit(undefined)).toBe(totalmem() / 2);
    expect(gpuMemoryLimit('')).toBe(totalmem() / 2);
    expect(gpuMemoryLimit('24GiB')).toBe(24 * 2 ** 30);
    expect(gpuMemoryLimit('16 GB')).toBe(16e9);
    expect(gpuMemoryLimit('1.5gib')).toBe(1.5 * 2 ** 30);
    expect(gpuMemoryLimit('123456')).toBe(123456);
    for (const bad of ['lots', '0', '-1GiB', '24 GiBs', 'NaN']) expect(() => gpuMemoryLimit(bad), bad).toThrow(/PRIMER_GPU_MEMORY: a size such as 24GiB/);
  });

  it('keeps the name auto for --backend auto: a plugin cannot take it', () => {
    expect(() => backends.register('auto', { specificationVersion: 1, description: 'x', activate: async () => ({ ok: false, reason: 'x' }), memoryLimit: () => 1 })).toThrow(/the name "auto" is taken/);
  });

  it('--backend auto, in a process of its own, passes over the software adapter without a word from Dawn, and says why', async () => {
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    const script = `import { selectBackend } from '@primer-search/trainer-gpu'; const s = await selectBackend('auto'); console.log(JSON.stringify({ choice: s.choice, skipped: s.skipped }));`;
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--conditions=@primer-search/source', '--import', 'tsx', '--input-type=module', '-e', script], { cwd: root });
    const r = JSON.parse(stdout) as { choice: string; skipped: Array<{ choice: string; reason: string }> };
    const webgpu = r.skipped.find((k) => k.choice === 'webgpu');
    if (r.choice === 'webgpu') return; // a machine with a GPU
    expect(webgpu?.reason).toMatch(/Dawn found no adapter \(tried vulkan|only a software adapter is here/);
    // Dawn is not asked where the Vulkan loader is missing, so it prints nothing
    if (/no Vulkan loader/.test(webgpu!.reason)) expect(stderr).not.toMatch(/Couldn't load Vulkan/);
  }, 60_000);
});

suite('the webgpu backend (Dawn)', () => {
  it('says which adapter it runs on, software or not, and bounds a tensor by its largest buffer binding', () => {
    const s = started as SelectedBackend;
    expect(s.choice).toBe('webgpu');
    expect(s.tfBackend).toBe('webgpu');
    const adapter = webgpuAdapter()!;
    expect(s.products).toBe(`WebGPU: ${adapter.description}`);
    expect(adapter.description).toMatch(/\(Dawn (vulkan|opengles)\)$/);
    // a software adapter says so, wherever the machine has one only
    if (/llvmpipe|lavapipe|swiftshader/i.test(adapter.description)) expect(adapter.software && adapter.description.startsWith('software: ')).toBe(true);
    expect(tensorMemoryLimit('webgpu')).toBe(Math.min(adapter.maxBufferSize, adapter.maxStorageBufferBindingSize));
    expect(tensorMemoryLimit('webgpu')).toBeGreaterThan(0);
  });

  it('cumulative sums and products of one length after another, every direction, equal cpu\'s (tfjs caches their shader without the length)', async () => {
    for (const op of ['cumsum', 'cumprod'] as const) {
      for (const [exclusive, reverse] of [[false, false], [true, false], [false, true], [true, true]]) {
        for (const n of [6, 4, 5, 3, 9]) {
          const v = Array.from({ length: 2 * n }, (_, i) => 0.5 + ((i * 7) % 10) / 10);
          const { cpu, gpu } = await onBoth(() => [tf[op](tf.tensor2d(v, [2, n]), 1, exclusive, reverse)]);
          expect(worst(gpu, cpu), `${op} length ${n}, exclusive ${exclusive}, reverse ${reverse}`).toBeLessThan(1e-5);
        }
      }
    }
  });

  describe('every primitive against cpu (forward and gradients)', () => {
    for (const op of builtinPrimitives) {
      it(op.name, async () => {
        const t = tf as unknown as TF;
        for (const c of contractCases(op)) {
          const { inputs, params } = randomCall(op, c.shape, Rng.create(op.name), (r, n) => defaultInput(r, n));
          const specs = op.parameters(c.shape);
          const { cpu, gpu } = await onBoth(() => {
            const xs = inputs.map((v, i) => tf.tensor3d(v, [c.shape.batch, c.shape.seqLen, c.shape.inWidths[i]!]));
            const ps = params.map((v, i) => tf.tensor(v, specs[i]!.shape));
            const f = (...a: tf.Tensor[]) => tf.sum(tf.sin(op.apply(t, a.slice(0, xs.length) as never, a.slice(xs.length) as never, c.shape) as unknown as tf.Tensor));
            const y = op.apply(t, xs as never, ps as never, c.shape) as unknown as tf.Tensor;
            return [y, ...tf.grads(f)([...xs, ...ps])];
          });
          expect(worst(gpu, cpu), `${op.name}(${c.shape.inWidths.join(', ')})`).toBeLessThan(1e-4);
        }
      });
    }
  });

  const mutants = vanillaMutants('webgpu-step-mutants', 3, 16);

  describe('a whole training step (loss and every gradient) against cpu', () => {
    for (const [name, dna] of [...baselines.names().map((n) => [n, baselineDna(n, { dModel: 16 })] as const), ...mutants]) {
      it(name, async () => {
        const step = async () => {
          const lm = compileLanguageModel(dna, { tf: tf as never, vocabSize: 23, layers: 2, dModel: 16, seqLen: 8, seed: 3 });
          try {
            return await read(() => {
              const rng = Rng.create(9);
              const tokens = tf.tensor2d(Array.from({ length: 16 }, () => rng.int(0, 22)), [2, 8], 'int32');
              const targets = tf.tensor2d(Array.from({ length: 16 }, () => rng.int(0, 22)), [2, 8], 'int32');
              const { value, grads } = tf.variableGrads(() => lm.loss(tokens as never, targets as never) as never, lm.variables as never);
              return [value, ...lm.variables.map((v) => grads[v.name]!)];
            });
          } finally {
            lm.dispose();
          }
        };
        await tf.setBackend('cpu');
        const cpu = await step();
        await tf.setBackend('webgpu');
        const gpu = await step();
        // the loss to 1e-5, every gradient element to 1e-4 (relative to max(1, |cpu|))
        expect(Math.abs(gpu[0]! - cpu[0]!)).toBeLessThan(1e-5);
        expect(worst(gpu, cpu)).toBeLessThan(1e-4);
      });
    }
  });

  it('trains: the loss falls over 100 steps, and the memory held is the same at step 100 as at step 10', async () => {
    await tf.setBackend('webgpu');
    const tokenizer = byteTokenizer();
    const corpus = brown.open();
    const lm = compileLanguageModel(baselineDna('vanilla', { dModel: 16 }), { tf: tf as never, vocabSize: tokenizer.vocabSize, layers: 1, dModel: 16, seqLen: 16, seed: 1 });
    const held: Array<{ numTensors: number; numBytes: number }> = [];
    try {
      const r = await trainModel({
        model: lm,
        sampler: new BatchSampler(tokenStream(corpus, 'train', tokenizer), 4, 16, 5),
        evaluation: evaluationBatches(tokenStream(corpus, 'validation', tokenizer), 4, 16, 4),
        budget: parseBudget('100steps'),
        config: { learningRate: 1e-2, warmupSteps: 10, checkpoints: [] },
        onProgress: (p) => {
          if (p.step === 10 || p.step === 100) held.push({ numTensors: tf.memory().numTensors, numBytes: tf.memory().numBytes });
        },
      });
      expect(r.status).toBe('completed');
      // bytes: ln(257) = 5.55 nats untrained; letter statistics come within 100 steps
      const mean = (c: typeof r.curve) => c.reduce((a, p) => a + p.loss, 0) / c.length;
      expect(mean(r.curve.slice(0, 5))).toBeGreaterThan(5);
      expect(mean(r.curve.slice(-10))).toBeLessThan(mean(r.curve.slice(0, 5)) - 1.5);
      expect(held).toHaveLength(2);
      expect(held[1]).toEqual(held[0]);
    } finally {
      lm.dispose();
    }
  });

  it('a kernel the device refuses fails the next read, naming the error, instead of training on garbage', async () => {
    await tf.setBackend('webgpu');
    const device = (tf.backend() as unknown as { device: { createBuffer(d: { size: number; usage: number }): unknown } }).device;
    // a buffer with every usage bit set: invalid on every device
    device.createBuffer({ size: 4, usage: 0xffffff });
    const refused = await tf.scalar(1).data().catch((e: unknown) => e);
    expect((refused as Error).message).toMatch(/the GPU refused a kernel of this program, so the results since are wrong: .*Buffer ?Usage/i);
    // the program's failure, as a candidate's result: a search goes on
    expect(blameOf(refused)).toBe('program');
    // and only that once: the next read is good
    expect(Array.from(await tf.add(tf.scalar(1), tf.scalar(2)).data())).toEqual([3]);
  });

  it('refuses a model with a tensor over the adapter\'s largest buffer binding before allocating, naming the limit', async () => {
    const limit = tensorMemoryLimit('webgpu');
    // logits of batch x seq x vocab floats, one more row than the binding holds
    const vocabSize = 257;
    const seqLen = 64;
    const batch = Math.ceil(limit / (4 * seqLen * vocabSize)) + 1;
    const before = tf.memory().numTensors;
    await expect(
      runExperiment(baselineDna('vanilla', { dModel: 16 }), { ...DEFAULT_RUN_SETTINGS, tokenizer: 'byte', dModel: 16, layers: 1, seqLen, batch, budget: parseBudget('1steps'), backend: 'webgpu' }),
    ).rejects.toThrow(/largest tensor is estimated at [\d.]+ MiB .* over the backend's largest buffer of [\d.]+ MiB/);
    expect(tf.memory().numTensors).toBe(before);
  });
});

suite('primer train --backend webgpu', () => {
  it('trains 20 steps and prints the adapter, software or not; saves the model, which generates on webgpu too', async () => {
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    const dir = join(mkdtempSync(join(tmpdir(), 'primer-webgpu-')), 'model');
    const primer = (args: string[]) => promisify(execFile)(process.execPath, ['--conditions=@primer-search/source', '--import', 'tsx', join(root, 'tools/primer-dev.ts'), ...args], { cwd: root });
    const { stdout, stderr } = await primer(['train', '--model', 'vanilla', '--backend', 'webgpu', '--budget', '20steps', '--d-model', '16', '--seq-len', '16', '--batch', '4', '--layers', '1', '--eval-windows', '2', '--save', dir]);
    const adapter = webgpuAdapter()!.description;
    expect(stderr).toContain(`backend: webgpu · products: WebGPU: ${adapter}`);
    expect(stdout).toContain(`backend webgpu · products: WebGPU: ${adapter}`);
    expect(stdout).toMatch(/steps {9}20\n/);
    expect(stdout).toMatch(/validation {4}loss [\d.]+ nats\/token/);
    // the export's own check (the written model computes what was trained) ran and passed
    expect(existsSync(join(dir, 'model.json'))).toBe(true);
    const generated = await primer(['generate', '--model', dir, '--prompt', 'The', '--tokens', '5', '--backend', 'webgpu']);
    expect(generated.stdout.length).toBeGreaterThan(3);
  }, 180_000);
});

suite('--backend auto', () => {
  it('passes over a software adapter (slower than wasm), saying why; takes a GPU', async () => {
    const s = await selectBackend('auto');
    if (webgpuAdapter()!.software) {
      expect(s.choice).not.toBe('webgpu');
      expect(s.skipped.find((k) => k.choice === 'webgpu')?.reason).toMatch(/only a software adapter is here \(software: .*\); --backend webgpu uses it/);
    } else expect(s.choice).toBe('webgpu');
  });
});
