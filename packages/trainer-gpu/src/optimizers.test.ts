import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { selectBackend, setNativeProducts } from './backends/index.js';
import { readCheckpoint, writeCheckpoint, type TrainCheckpoint } from './checkpoint.js';
import { FUSED_ADAM, createOptimizer } from './optimizers.js';
import { DEFAULT_TRAIN_CONFIG, type OptimizerName } from '@primer-search/study';

await selectBackend('cpu');

const SHAPES: Record<string, number[]> = { a: [3, 2], b: [4], c: [2, 2] };
/** Which variables get a gradient at each step: b none at first, c missing in the middle. */
const HAS_GRAD = (step: number, name: string) => (name === 'b' ? step >= 3 : name === 'c' ? step % 3 !== 1 : true);
const gradValue = (step: number, name: string, i: number) => Math.sin(step * 1.7 + i * 0.31 + name.charCodeAt(0));

function makeVariables() {
  return Object.fromEntries(Object.entries(SHAPES).map(([n, shape]) => [n, tf.variable(tf.fill(shape, 0.5))]));
}

/** Runs `steps` steps of `opt` over fresh variables; returns their values. */
function runSteps(opt: ReturnType<typeof createOptimizer>, vars: Record<string, tf.Variable>, from: number, to: number) {
  for (let step = from; step < to; step++) {
    opt.setLearningRate(0.01);
    const grads: tf.NamedTensorMap = {};
    for (const [n, v] of Object.entries(vars)) {
      if (!HAS_GRAD(step, n)) continue;
      grads[v.name] = tf.tensor(Array.from({ length: v.size }, (_, i) => gradValue(step, n, i)), v.shape);
    }
    opt.applyGradients(grads);
    tf.dispose(Object.values(grads));
  }
}

/** Adam written out in plain numbers, per variable, skipping the steps it has no gradient. */
function referenceAdam(steps: number): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [n, shape] of Object.entries(SHAPES)) {
    const size = shape.reduce((x, y) => x * y, 1);
    const w = new Array(size).fill(0.5);
    const m = new Array(size).fill(0);
    const v = new Array(size).fill(0);
    for (let step = 0; step < steps; step++) {
      if (!HAS_GRAD(step, n)) continue;
      const t = step + 1; // the optimizer counts its own steps, one per applyGradients
      for (let i = 0; i < size; i++) {
        const g = gradValue(step, n, i);
        m[i] = 0.9 * m[i] + 0.1 * g;
        v[i] = 0.98 * v[i] + 0.02 * g * g;
        w[i] -= (0.01 * (m[i] / (1 - 0.9 ** t))) / (Math.sqrt(v[i] / (1 - 0.98 ** t)) + 1e-9);
      }
    }
    out[n] = w;
  }
  return out;
}

const values = (vars: Record<string, tf.Variable>) => Object.fromEntries(Object.entries(vars).map(([n, v]) => [n, Array.from(v.dataSync())]));

describe('optimizer state is keyed by variable name', () => {
  it('Adam matches the formula when a variable has no gradient at some steps', () => {
    const vars = makeVariables();
    const opt = createOptimizer('adam');
    runSteps(opt, vars, 0, 8);
    const got = values(vars);
    const want = referenceAdam(8);
    for (const n of Object.keys(SHAPES)) {
      got[n]!.forEach((x, i) => expect(Math.abs(x - want[n]![i]!), `${n}[${i}]`).toBeLessThan(1e-5));
    }
    opt.dispose();
    tf.dispose(Object.values(vars));
  });

  it('Adam on wasm, one fused kernel per variable, matches the formula and the composite on cpu', async () => {
    const run = async () => {
      const vars = makeVariables();
      const opt = createOptimizer('adam');
      runSteps(opt, vars, 0, 8);
      const slots = await opt.saveSlots(new Map(Object.entries(vars).map(([n, v]) => [v.name, n])));
      const out = { values: values(vars), slots: Object.fromEntries(Object.entries(slots).map(([k, s]) => [k, Array.from(s.values)])) };
      opt.dispose();
      tf.dispose(Object.values(vars));
      return out;
    };
    const cpu = await run();
    await selectBackend('wasm');
    try {
      expect(tf.getKernel(FUSED_ADAM, 'wasm')).toBeDefined();
      expect(tf.getKernel(FUSED_ADAM, 'cpu')).toBeUndefined();
      for (const native of [false, true]) {
        // JavaScript, then the native addon (where it loads: CI requires it)
        if (setNativeProducts(native).on !== native) continue;
        const profile = await tf.profile(async () => {
          const wasm = await run();
          const want = referenceAdam(8);
          for (const n of Object.keys(SHAPES)) {
            wasm.values[n]!.forEach((x, i) => expect(Math.abs(x - want[n]![i]!), `${n}[${i}]`).toBeLessThan(1e-5));
            wasm.values[n]!.forEach((x, i) => expect(Math.abs(x - cpu.values[n]![i]!), `${n}[${i}] against cpu`).toBeLessThan(1e-6));
          }
          expect(Object.keys(wasm.slots).sort()).toEqual(Object.keys(cpu.slots).sort());
          for (const [k, v] of Object.entries(cpu.slots)) v.forEach((x, i) => expect(Math.abs(x - wasm.slots[k]![i]!), k).toBeLessThan(1e-6 + 1e-5 * Math.abs(x)));
        });
        expect(profile.kernels.filter((k) => k.name === FUSED_ADAM).length).toBeGreaterThan(0);
      }
    } finally {
      await selectBackend('cpu');
    }
  });

  for (const name of ['adam', 'adafactor'] as OptimizerName[]) {
    it(`${name}: saved mid-run (one variable not yet updated) and restored into other variables, it continues bit for bit`, async () => {
      const straightVars = makeVariables();
      const straight = createOptimizer(name);
      runSteps(straight, straightVars, 0, 9);

      const firstVars = makeVariables();
      const first = createOptimizer(name);
      runSteps(first, firstVars, 0, 2); // b has had no gradient yet, so it has no state
      const stable = (vars: Record<string, tf.Variable>) => new Map(Object.entries(vars).map(([n, v]) => [v.name, `layer0/${n}`]));
      const saved = await first.saveSlots(stable(firstVars));
      expect(Object.keys(saved).some((k) => k.startsWith('layer0/b/'))).toBe(false);
      expect(Object.keys(saved).some((k) => k.startsWith('layer0/c/'))).toBe(true);

      // new variables, created in another order, so tfjs names and positions both differ
      const entries = Object.entries(SHAPES).reverse();
      const secondVars = Object.fromEntries(entries.map(([n, shape]) => [n, tf.variable(tf.fill(shape, 0))]));
      for (const n of Object.keys(SHAPES)) secondVars[n]!.assign(firstVars[n]!);
      const second = createOptimizer(name);
      second.loadSlots(stable(secondVars), saved);
      runSteps(second, secondVars, 2, 9);
      expect(values(secondVars)).toEqual(values(straightVars));
      for (const o of [straight, first, second]) o.dispose();
      tf.dispose([...Object.values(straightVars), ...Object.values(firstVars), ...Object.values(secondVars)]);
    });
  }

  it('refuses saved state that belongs to no variable of the model', async () => {
    const vars = makeVariables();
    const opt = createOptimizer('adam');
    runSteps(opt, vars, 0, 1);
    const saved = await opt.saveSlots(new Map(Object.entries(vars).map(([n, v]) => [v.name, n])));
    const other = createOptimizer('adam');
    expect(() => other.loadSlots(new Map([[vars.a!.name, 'a']]), saved)).toThrow(/optimizer state c\/m belongs to no variable of this model/);
    opt.dispose();
    other.dispose();
    tf.dispose(Object.values(vars));
  });
});

describe('checkpoint files', () => {
  const base = (step: number): Omit<TrainCheckpoint, 'weights' | 'optimizer'> => ({
    format: 'primer-train-checkpoint',
    version: 2,
    budget: { kind: 'steps', steps: 10 },
    config: DEFAULT_TRAIN_CONFIG,
    step,
    tokens: 0,
    trainSeconds: 0,
    evalSeconds: 0,
    evaluations: [],
    curve: [],
    sampler: { seed: 1, counter: 0 } as never,
  });

  it('hold a 40M-parameter model with Adam state (over V8 string limits as base64), as binary data beside a small manifest', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'primer-ckpt-big-')), 'ck');
    const n = 10_000_000;
    const tensor = (k: number) => {
      const values = new Float32Array(n);
      for (let i = 0; i < n; i += 9973) values[i] = k + i / n;
      return { values, shape: [n / 1000, 1000] };
    };
    const weights = Object.fromEntries([0, 1, 2, 3].map((k) => [`layer${k}/w`, tensor(k)]));
    const slots = Object.fromEntries([0, 1, 2, 3].flatMap((k) => [[`layer${k}/w/m`, tensor(10 + k)], [`layer${k}/w/v`, tensor(20 + k)]]));
    writeCheckpoint(dir, { ...base(3), weights, optimizer: { name: 'adam', slots } });
    const files = readdirSync(dir);
    expect(files.filter((f) => f.endsWith('.bin'))).toHaveLength(1);
    expect(statSync(join(dir, 'checkpoint.json')).size).toBeLessThan(10_000);
    const back = readCheckpoint(dir);
    expect(Object.keys(back.weights)).toEqual(Object.keys(weights));
    expect(Object.keys(back.optimizer.slots)).toEqual(Object.keys(slots));
    for (const [k, t] of Object.entries(weights)) {
      expect(back.weights[k]!.shape).toEqual(t.shape);
      expect(Buffer.compare(Buffer.from(back.weights[k]!.values.buffer), Buffer.from(t.values.buffer))).toBe(0);
    }
    expect(Buffer.compare(Buffer.from(back.optimizer.slots['layer3/w/v']!.values.buffer), Buffer.from(slots['layer3/w/v']!.values.buffer))).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('replace the previous save only when the new one is whole; a torn data file is named', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'primer-ckpt-')), 'ck');
    const one = (step: number) => ({ ...base(step), weights: { w: { values: Float32Array.of(step, 2), shape: [2] } }, optimizer: { name: 'adam', slots: {} } });
    writeCheckpoint(dir, one(1));
    writeCheckpoint(dir, one(2));
    expect(readdirSync(dir).filter((f) => f.endsWith('.bin'))).toHaveLength(1);
    expect(readCheckpoint(dir).step).toBe(2);
    const data = readdirSync(dir).find((f) => f.endsWith('.bin'))!;
    truncateSync(join(dir, data), 4);
    expect(() => readCheckpoint(dir)).toThrow(new RegExp(`is damaged: its data file ${data.replace(/[.]/g, '\\.')} is missing or not 8 bytes`));
    expect(() => writeCheckpoint(join(dir, 'checkpoint.json'), one(3))).toThrow(/is a file; a checkpoint is a folder/);
    truncateSync(join(dir, data), 8);
    // the manifest is data: a data file named outside the folder is refused, not read
    const manifest = JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8'));
    for (const name of ['../secret.bin', '/etc/passwd', 'tensors-1\u001b[31m.bin']) {
      writeFileSync(join(dir, 'checkpoint.json'), JSON.stringify({ ...manifest, data: name }));
      expect(() => readCheckpoint(dir)).toThrow(/names a data file that is not one of its own: "/);
      expect(() => readCheckpoint(dir)).not.toThrow(/\u001b/);
    }
    for (const entry of [{ name: 'weights/w', shape: [2], offset: 1e9 }, { name: 'weights/w', shape: [-1], offset: 0 }, { name: 'other/w', shape: [2], offset: 0 }, { name: 7, shape: [2], offset: 0 }, null]) {
      writeFileSync(join(dir, 'checkpoint.json'), JSON.stringify({ ...manifest, tensors: [entry] }));
      expect(() => readCheckpoint(dir)).toThrow(/is damaged: a tensor entry of its manifest is not one it could have written/);
    }
    // a tensor named like an object's own property is only a name
    writeFileSync(join(dir, 'checkpoint.json'), JSON.stringify({ ...manifest, tensors: [{ name: 'weights/__proto__', shape: [2], offset: 0 }] }));
    const proto = readCheckpoint(dir);
    expect(Object.keys(proto.weights)).toEqual(['__proto__']);
    expect(proto.weights['__proto__']!.shape).toEqual([2]);
    writeFileSync(join(dir, 'checkpoint.json'), '\u001b]0;x\u0007{');
    expect(() => readCheckpoint(dir)).toThrow(/has no readable checkpoint\.json/);
    expect(() => readCheckpoint(dir)).not.toThrow(/\u001b|\u0007/);
  });
});
