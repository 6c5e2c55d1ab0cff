import * as tf from '@tensorflow/tfjs';
import { baselineDna, baselines } from '@primer-search/baselines';
import { FUSED_CAUSAL_SOFTMAX, FUSED_CROSS_ENTROPY, FUSED_NORMALIZE, compileLanguageModel, fusedCausalSoftmax, fusedNormalize, sparseSoftmaxCrossEntropy } from '@primer-search/compiler';
import { Rng } from '@primer-search/core';
import { FUSED_DEPTHWISE_CONV, builtinPrimitives, type TF } from '@primer-search/primitives';
import { contractCases, defaultInput, randomCall } from '@primer-search/primitives/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { vanillaMutants } from './__fixtures__/mutants.js';
import { selectBackend } from './backends/index.js';
import { loadNativeBlas } from './backends/index.js';
import { setNativeProducts } from './backends/index.js';

await selectBackend('wasm');

/**
 * The products run on XNNPACK, and again on the system's BLAS where the native path loads
 * (CI installs OpenBLAS and sets PRIMER_REQUIRE_NATIVE_BLAS, so there it must).
 */
const nativeStatus = loadNativeBlas();
const PATHS: Array<{ name: string; native: boolean }> = [{ name: 'XNNPACK products', native: false }];
if (nativeStatus.ok) PATHS.push({ name: `native products (${nativeStatus.library})`, native: true });
else if (process.env.PRIMER_REQUIRE_NATIVE_BLAS) throw new Error(`PRIMER_REQUIRE_NATIVE_BLAS is set but the native product path did not load: ${nativeStatus.reason}`);
else console.warn(`wasm.test.ts: the native product path is not tested here: ${nativeStatus.reason}`);
const onPath = (path: { native: boolean }) =>
  beforeAll(() => {
    expect(setNativeProducts(path.native).on).toBe(path.native);
  });

/** Runs `fn` on the cpu backend, then on wasm, and returns both results as plain arrays. */
async function onBoth<T>(fn: () => T): Promise<{ cpu: T; wasm: T }> {
  await tf.setBackend('cpu');
  const cpu = fn();
  await tf.setBackend('wasm');
  const wasm = fn();
  return { cpu, wasm };
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number) => {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
  expect(worst).toBeLessThan(tol);
};

for (const path of PATHS) describe(`the fused cross-entropy on wasm against the composite one on cpu (${path.name})`, () => {
  onPath(path);
  it('is registered on wasm only, and gives the same loss and gradient, large logits included', async () => {
    expect(tf.getKernel(FUSED_CROSS_ENTROPY, 'wasm')).toBeDefined();
    expect(tf.getKernel(FUSED_CROSS_ENTROPY, 'cpu')).toBeUndefined();
    for (const [n, v] of [[37, 50], [5, 2], [64, 1024]] as const) {
      const rng = Rng.create(`ce${n}x${v}`);
      const z = Array.from({ length: n * v }, (_, i) => rng.normal() * (i % 7 === 0 ? 30 : 3));
      const t = Array.from({ length: n }, () => rng.int(0, v - 1));
      const { cpu, wasm } = await onBoth(() =>
        tf.tidy(() => {
          const targets = tf.tensor1d(t, 'int32');
          const f = (x: tf.Tensor) => sparseSoftmaxCrossEntropy(tf as never, x as never, targets as never) as unknown as tf.Scalar;
          const { value, grad } = tf.valueAndGrad(f)(tf.tensor2d(z, [n, v]));
          return [value.dataSync()[0]!, ...Array.from(grad.dataSync())];
        }),
      );
      expect(Math.abs(wasm[0]! - cpu[0]!) / Math.abs(cpu[0]!)).toBeLessThan(1e-5);
      close(wasm, cpu, 1e-5);
    }
  });

  it('a target outside the vocabulary adds no target term (the formula by hand)', async () => {
    await tf.setBackend('wasm');
    const z = [1, 2, 3, 0.5, -1, 4];
    const got = tf.tidy(() => sparseSoftmaxCrossEntropy(tf as never, tf.tensor2d(z, [2, 3]) as never, tf.tensor1d([-1, 2], 'int32') as never).dataSync()[0]!);
    const lse = (a: number[]) => Math.log(a.reduce((s, x) => s + Math.exp(x), 0));
    expect(got).toBeCloseTo((lse([1, 2, 3]) + lse([0.5, -1, 4]) - 4) / 2, 5);
  });
});

for (const path of PATHS) describe(`the fused causal depthwise convolution on wasm against the composite on cpu (${path.name})`, () => {
  onPath(path);
  it('is registered on wasm only; forward and both gradients match, odd sizes and sequences shorter than the kernel included', async () => {
    expect(tf.getKernel(FUSED_DEPTHWISE_CONV, 'wasm')).toBeDefined();
    expect(tf.getKernel(FUSED_DEPTHWISE_CONV, 'cpu')).toBeUndefined();
    for (const [name, shape] of [['DCONV_3X1', [3, 70, 33]], ['DCONV_7X1', [2, 9, 5]], ['DCONV_3X1', [2, 2, 4]], ['DCONV_15X1', [1, 16, 8]]] as const) {
      const op = builtinPrimitives.find((p) => p.name === name)!;
      const [b, t, w] = shape;
      const s = { batch: b, seqLen: t, inWidths: [w], outWidth: w } as never;
      const rng = Rng.create(`${name}${shape.join()}`);
      const xv = Array.from({ length: b * t * w }, () => rng.normal());
      const k = Number(/_(\d+)X1/.exec(name)![1]);
      const kv = Array.from({ length: k * w }, () => rng.normal());
      const { cpu, wasm } = await onBoth(() =>
        tf.tidy(() => {
          const f = (x: tf.Tensor, kernel: tf.Tensor) => tf.sum(tf.sin(op.apply(tf as never, [x] as never, [kernel] as never, s) as unknown as tf.Tensor));
          const y = op.apply(tf as never, [tf.tensor3d(xv, [b, t, w])] as never, [tf.tensor2d(kv, [k, w])] as never, s) as unknown as tf.Tensor;
          const g = tf.grads(f)([tf.tensor3d(xv, [b, t, w]), tf.tensor2d(kv, [k, w])]);
          return [...Array.from(y.dataSync()), ...g.flatMap((x) => Array.from(x.dataSync()))];
        }),
      );
      close(wasm, cpu, 1e-4);
    }
  });
});

for (const path of PATHS) describe(`the fused causal softmax on wasm against the chain of primitives on cpu (${path.name}: ${path.native ? 'native' : 'JavaScript'} exponentials)`, () => {
  onPath(path);
  const chain = ['MASK', 'RED_MAX', 'DIFFERENCE', 'EXP', 'RED_SUM', 'DIVIDE'].map((n) => builtinPrimitives.find((p) => p.name === n)!);
  /** MASK -> RED_MAX -> DIFFERENCE -> EXP -> RED_SUM -> DIVIDE, op by op, as the baselines' causal_softmax runs. */
  const composite = (x: tf.Tensor) => {
    const [b, t] = x.shape as [number, number, number];
    const s = (w: number) => ({ batch: b, seqLen: t, inWidths: [w, w], outWidth: w, dimSize: 0, constant: 0 }) as never;
    const ap = (i: number, ins: tf.Tensor[], w = t) => chain[i]!.apply(tf as never, ins as never, [], s(w)) as unknown as tf.Tensor;
    const m = ap(0, [x]);
    const e = ap(3, [ap(2, [m, ap(1, [m], 1)])]);
    return ap(5, [e, ap(4, [e], 1)]);
  };
  it('is registered on wasm only; forward and gradient match, large and equal scores and single positions included', async () => {
    expect(tf.getKernel(FUSED_CAUSAL_SOFTMAX, 'wasm')).toBeDefined();
    expect(tf.getKernel(FUSED_CAUSAL_SOFTMAX, 'cpu')).toBeUndefined();
    for (const [b, t, scale] of [[3, 17, 1], [2, 64, 8], [1, 1, 1], [4, 5, 40], [2, 9, 0]] as const) {
      const rng = Rng.create(`softmax${b}x${t}x${scale}`);
      const xv = Array.from({ length: b * t * t }, () => rng.normal() * scale);
      const wv = Array.from({ length: b * t * t }, () => rng.normal());
      const { cpu, wasm } = await onBoth(() =>
        tf.tidy(() => {
          const f = tf.getBackend() === 'wasm' ? (x: tf.Tensor) => fusedCausalSoftmax(tf as never, x as never) as unknown as tf.Tensor : composite;
          const weights = tf.tensor3d(wv, [b, t, t]);
          const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => tf.sum(tf.mul(f(x), weights)) as tf.Scalar)(tf.tensor3d(xv, [b, t, t]));
          return [value.dataSync()[0]!, ...Array.from(f(tf.tensor3d(xv, [b, t, t])).dataSync()), ...Array.from(grad.dataSync())];
        }),
      );
      close(wasm, cpu, 1e-5);
    }
  });
});

for (const path of PATHS) describe(`the fused normalisation on wasm against the chain of primitives on cpu (${path.name})`, () => {
  onPath(path);
  const op = (name: string) => builtinPrimitives.find((p) => p.name === name)!;
  /** RED_MEAN -> DIFFERENCE -> SQUARE -> RED_MEAN -> ABS_ROOT -> DIVIDE, op by op, as the baselines' layer_norm runs. */
  const composite = (x: tf.Tensor) => {
    const [b, t, w] = x.shape as [number, number, number];
    const s = (wi: number[], wo: number) => ({ batch: b, seqLen: t, inWidths: wi, outWidth: wo, dimSize: 0, constant: 0 }) as never;
    const ap = (name: string, ins: tf.Tensor[], wo: number) => op(name).apply(tf as never, ins as never, [], s(ins.map((i) => i.shape[2] as number), wo)) as unknown as tf.Tensor;
    const c = ap('DIFFERENCE', [x, ap('RED_MEAN', [x], 1)], w);
    return ap('DIVIDE', [c, ap('ABS_ROOT', [ap('RED_MEAN', [ap('SQUARE', [c], w)], 1)], 1)], w);
  };
  it('is registered on wasm only; forward and gradient match, constant rows, width 1 and large offsets included', async () => {
    expect(tf.getKernel(FUSED_NORMALIZE, 'wasm')).toBeDefined();
    expect(tf.getKernel(FUSED_NORMALIZE, 'cpu')).toBeUndefined();
    for (const [b, t, w, offset] of [[3, 7, 33, 0], [2, 64, 128, 5], [1, 3, 1, 0], [2, 4, 8, 1000]] as const) {
      const rng = Rng.create(`norm${b}x${t}x${w}`);
      const xv = Array.from({ length: b * t * w }, (_, i) => (i < w ? 0.25 : offset + rng.normal()));
      const wv = Array.from({ length: b * t * w }, () => rng.normal());
      const { cpu, wasm } = await onBoth(() =>
        tf.tidy(() => {
          const f = tf.getBackend() === 'wasm' ? (x: tf.Tensor) => fusedNormalize(tf as never, x as never) as unknown as tf.Tensor : composite;
          const weights = tf.tensor3d(wv, [b, t, w]);
          const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => tf.sum(tf.mul(f(x), weights)) as tf.Scalar)(tf.tensor3d(xv, [b, t, w]));
          return [value.dataSync()[0]!, ...Array.from(f(tf.tensor3d(xv, [b, t, w])).dataSync()), ...Array.from(grad.dataSync())];
        }),
      );
      close(wasm, cpu, offset > 100 ? 2e-3 : 1e-4);
    }
  });
});

for (const path of PATHS) describe(`GatherV2 and Sum on wasm (ours for axis 0 and leading axes) against cpu (${path.name})`, () => {
  onPath(path);
  it('GatherV2: rows of float32 and int32 tables by any index shape, other axes stock, out-of-range indices refused', async () => {
    for (const [shape, ids, axis] of [[[7, 5], [[3, 0, 6], [6, 6, 1]], 0], [[4, 3, 2], [2, 0], 0], [[9], [8, 0, 4], 0], [[3, 6], [5, 1], 1]] as const) {
      const rng = Rng.create(`gather${shape.join()}`);
      const xv = Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
      const { cpu, wasm } = await onBoth(() =>
        tf.tidy(() => {
          const x = tf.tensor(xv, [...shape]);
          const idx = tf.tensor(ids as unknown as number[], undefined, 'int32');
          const g = tf.grad((t: tf.Tensor) => tf.sum(tf.sin(tf.gather(t, idx, axis))))(x);
          return [...Array.from(tf.gather(x, idx, axis).dataSync()), ...Array.from(tf.gather(tf.cast(x, 'int32'), idx, axis).dataSync()), ...Array.from(g.dataSync())];
        }),
      );
      close(wasm, cpu, 1e-6);
    }
    expect(() => tf.tidy(() => tf.gather(tf.ones([3, 2]), tf.tensor1d([1, 3], 'int32')))).toThrow(/index value 3 is not in \[0, 2\]/);
  });

  it('Sum: leading axes with and without keepDims, other axes stock, equal to cpu', async () => {
    const cases: Array<[number[], number | number[]]> = [[[16, 64, 40], [0, 1]], [[5, 7, 3], 0], [[4, 6], [0]], [[3, 4, 5], [1, 2]], [[3, 4, 5], [0, 2]], [[2, 3, 4, 5], [0, 1, 2]], [[6, 5], [0, 1]]];
    for (const [shape, axis] of cases) {
      const rng = Rng.create(`sum${shape.join()}${String(axis)}`);
      const xv = Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
      const { cpu, wasm } = await onBoth(() =>
        tf.tidy(() => {
          const x = tf.tensor(xv, shape);
          return [false, true].flatMap((keep) => {
            const y = tf.sum(x, axis, keep);
            return [...y.shape, ...Array.from(y.dataSync())];
          });
        }),
      );
      close(wasm, cpu, 1e-5);
    }
  });
});

describe('Identity and same-dtype Cast on wasm (ours: no copy)', () => {
  it('share the input memory, count references, and free it once both are disposed', () => {
    const before = tf.memory().numBytes;
    for (const [dtype, values] of [['float32', [1.5, -2, 3]], ['int32', [4, 5, 6]], ['bool', [1, 0, 1]]] as const) {
      const x = tf.tensor1d(values as unknown as number[], dtype);
      const copies = [tf.clone(x), tf.cast(x, dtype), tf.engine().runKernel('Identity', { x }) as tf.Tensor];
      x.dispose();
      for (const c of copies) {
        expect(c.dtype).toBe(dtype);
        expect(Array.from(c.dataSync())).toEqual(values);
      }
      copies[0]!.dispose();
      expect(Array.from(copies[2]!.dataSync())).toEqual(values);
      copies.slice(1).forEach((c) => c.dispose());
    }
    // a cast that changes the dtype still converts
    const cast = tf.tidy(() => Array.from(tf.cast(tf.tensor1d([1.7, -2.2, 0]), 'int32').dataSync()));
    expect(cast).toEqual([1, -2, 0]);
    expect(tf.memory().numBytes).toBe(before);
  });
});

describe('the vanilla block on wasm', () => {
  it('runs each layer\'s attention softmax as one fused kernel for all heads, and each normalisation as one', async () => {
    const lm = compileLanguageModel(baselineDna('vanilla', { dModel: 32 }), { tf: tf as never, vocabSize: 37, layers: 2, dModel: 32, seqLen: 12, seed: 3 });
    const tokens = tf.zeros([2, 12], 'int32');
    const p = await tf.profile(() => lm.logits(tokens as never) as never);
    lm.dispose();
    tokens.dispose();
    const names = p.kernels.map((k) => k.name);
    expect(names.filter((n) => n === FUSED_CAUSAL_SOFTMAX)).toHaveLength(2);
    // two layer norms a layer and the final norm, one kernel each
    expect(names.filter((n) => n === FUSED_NORMALIZE)).toHaveLength(5);
    expect(names).not.toContain('Mean');
    expect(names).not.toContain('Exp');
    // the heads' scores: one [heads * batch, seq, seq] product per layer
    expect(p.kernels.filter((k) => k.name === FUSED_CAUSAL_SOFTMAX).map((k) => k.inputShapes[0])).toEqual([[8, 12, 12], [8, 12, 12]]);
  });
});

for (const path of PATHS) describe(`each applyLanes on wasm against one apply per lane on cpu (forward and gradients) (${path.name})`, () => {
  onPath(path);
  for (const op of builtinPrimitives.filter((p) => p.applyLanes)) {
    it(op.name, async () => {
      const lanes = 3;
      for (const c of contractCases(op)) {
        const rng = Rng.create(`lanes${op.name}`);
        const calls = Array.from({ length: lanes }, () => randomCall(op, c.shape, rng, (r, n) => defaultInput(r, n)));
        const specs = op.parameters(c.shape);
        const { batch, seqLen, inWidths } = c.shape;
        const run = () =>
          tf.tidy(() => {
            const xs = inWidths.map((w, i) => tf.tensor3d(calls.flatMap((l) => Array.from(l.inputs[i]!)), [lanes * batch, seqLen, w]));
            const ps = calls.flatMap((l) => l.params.map((v, i) => tf.tensor(v, specs[i]!.shape)));
            const apply = (a: tf.Tensor[]) => {
              const x = a.slice(0, xs.length);
              const perLane = Array.from({ length: lanes }, (_, l) => a.slice(xs.length + l * specs.length, xs.length + (l + 1) * specs.length));
              if (tf.getBackend() === 'wasm') return op.applyLanes!(tf as never, x as never, perLane as never, { ...c.shape, lanes }) as unknown as tf.Tensor;
              const parts = x.map((t) => tf.split(t, lanes, 0));
              return tf.concat(perLane.map((p, l) => op.apply(tf as never, parts.map((part) => part[l]!) as never, p as never, c.shape) as unknown as tf.Tensor), 0);
            };
            const y = Array.from(apply([...xs, ...ps]).dataSync());
            const grads = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.sin(apply(a))))([...xs, ...ps]).flatMap((g) => Array.from(g.dataSync()));
            return [...y, ...grads];
          });
        const { cpu, wasm } = await onBoth(run);
        close(wasm, cpu, 1e-4);
      }
    });
  }
});

describe('UnsortedSegmentSum on wasm (our kernel) against cpu', () => {
  it('matches on random shapes, with out-of-range ids dropped', async () => {
    const rng = Rng.create(1);
    for (const shape of [[7], [9, 3], [5, 4, 3], [1, 1], [64, 17]]) {
      const n = shape.reduce((a, b) => a * b, 1);
      const xs = Array.from({ length: n }, () => rng.normal());
      const numSegments = rng.int(1, 6);
      const ids = Array.from({ length: shape[0]! }, () => rng.int(-1, numSegments));
      const { cpu, wasm } = await onBoth(() =>
        tf.tidy(() => Array.from(tf.unsortedSegmentSum(tf.tensor(xs, shape), tf.tensor1d(ids, 'int32'), numSegments).dataSync())),
      );
      close(wasm, cpu, 1e-6);
    }
  });

  it('makes the embedding gradient work', async () => {
    const { cpu, wasm } = await onBoth(() =>
      tf.tidy(() => {
        const table = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
        const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, tf.tensor1d([0, 2, 2, 1], 'int32')), tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]))))(table);
        return Array.from(g.dataSync());
      }),
    );
    expect(wasm).toEqual(cpu);
    expect(cpu).toEqual([1, 2, 7, 8, 8, 10]);
  });
});

describe('Equal on wasm (our kernel) against cpu', () => {
  it('matches for equal shapes, row broadcasts and general broadcasting', async () => {
    const rng = Rng.create(3);
    const grid = (n: number) => Array.from({ length: n }, () => rng.int(0, 3));
    for (const [sa, sb] of [[[4, 5], [4, 5]], [[3, 4, 5], [3, 4, 1]], [[3, 4, 5], [5]], [[3, 1, 5], [1, 4, 1]], [[2, 3], [1]], [[6], [2, 3, 6]]]) {
      const va = grid(sa!.reduce((x, y) => x * y, 1));
      const vb = grid(sb!.reduce((x, y) => x * y, 1));
      const { cpu, wasm } = await onBoth(() =>
        tf.tidy(() => {
          const y = tf.equal(tf.tensor(va, sa), tf.tensor(vb, sb));
          return { shape: y.shape, values: Array.from(y.dataSync()) };
        }),
      );
      expect(wasm).toEqual(cpu);
    }
  });

  it('matches for every broadcast combination of ranks 1-4, size-1 axes on either side', async () => {
    const rng = Rng.create(4);
    const full = [2, 3, 4, 2];
    // every shape of rank 1-4 whose axes are the output's trailing axes or 1
    const shapes: number[][] = [];
    for (let r = 1; r <= 4; r++) {
      for (let mask = 0; mask < 1 << r; mask++) {
        shapes.push(full.slice(4 - r).map((d, i) => ((mask >> i) & 1 ? 1 : d)));
      }
    }
    const grid = (shape: number[]) => Array.from({ length: shape.reduce((x, y) => x * y, 1) }, () => rng.int(0, 2));
    const pairs = shapes.flatMap((sa) => shapes.map((sb) => [sa, sb, grid(sa), grid(sb)] as const));
    const run = () =>
      pairs.map(([sa, sb, va, vb]) =>
        tf.tidy(() => {
          const y = tf.equal(tf.tensor(va, sa), tf.tensor(vb, sb));
          return `${sa} ${sb} -> ${y.shape}: ${Array.from(y.dataSync()).join('')}`;
        }),
      );
    const { cpu, wasm } = await onBoth(run);
    expect(pairs.length).toBe(900);
    expect(wasm).toEqual(cpu);
    // the form the old fast path got wrong
    const [va, vb] = [grid([1, 4, 4]), grid([2, 4, 1])];
    const { cpu: c, wasm: w } = await onBoth(() =>
      tf.tidy(() => Array.from(tf.equal(tf.tensor(va, [1, 4, 4]), tf.tensor(vb, [2, 4, 1])).dataSync())),
    );
    expect(w).toEqual(c);
  });
});

describe('Transpose on wasm (our kernel) against cpu', () => {
  it('matches for last-two-axes swaps of any size and for other permutations', async () => {
    const rng = Rng.create(8);
    for (const [shape, perm] of [[[1024, 128], [1, 0]], [[33, 65], [1, 0]], [[3, 7, 5], [0, 2, 1]], [[2, 3, 4, 5], [0, 1, 3, 2]], [[2, 3, 4], [2, 0, 1]], [[1, 1], [1, 0]]] as Array<[number[], number[]]>) {
      const v = Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
      const { cpu, wasm } = await onBoth(() =>
        tf.tidy(() => {
          const y = tf.transpose(tf.tensor(v, shape), perm);
          return { shape: y.shape, values: Array.from(y.dataSync()) };
        }),
      );
      expect(wasm).toEqual(cpu);
    }
    const ints = await onBoth(() => tf.tidy(() => Array.from(tf.transpose(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32')).dataSync())));
    expect(ints.wasm).toEqual(ints.cpu);
  });
});

describe('SplitV on wasm (our kernel) against cpu', () => {
  it('matches on every axis, uneven and -1 sizes, int32, empty pieces, and as the gradient of concat', async () => {
    const rng = Rng.create(11);
    const cases: Array<[number[], number, number[] | number]> = [
      [[16, 64, 384], 2, 12],
      [[3, 5, 7], 2, [2, 4, 1]],
      [[3, 5, 7], 1, [1, -1, 2]],
      [[4, 6], 0, [1, 3]],
      [[2, 3, 4, 5], -2, 2],
      [[5, 3], 1, [3, 0]],
    ];
    for (const [shape, axis, split] of cases) {
      const v = Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
      const { cpu, wasm } = await onBoth(() =>
        tf.tidy(() => {
          const parts = tf.split(tf.tensor(v, shape), split, axis);
          const back = tf.concat(parts.map((p, i) => tf.mul(p, i + 1)), axis);
          const grad = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.concat(tf.split(x, split, axis).reverse(), axis), tf.range(0, x.size).reshape(x.shape))))(tf.tensor(v, shape));
          return { parts: parts.map((p) => ({ shape: p.shape, values: Array.from(p.dataSync()) })), back: Array.from(back.dataSync()), grad: Array.from(grad.dataSync()) };
        }),
      );
      expect(wasm, `${shape} axis ${axis} split ${split}`).toEqual(cpu);
    }
    const ints = await onBoth(() => tf.tidy(() => Array.from(tf.concat(tf.split(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32'), [1, 2], 1).reverse(), 1).dataSync())));
    expect(ints.wasm).toEqual(ints.cpu);
  });
});

for (const path of PATHS) describe(`BatchMatMul on wasm (our fast path, ${path.name}) against cpu`, () => {
  onPath(path);
  const cases: Array<[number[], number[], boolean, boolean]> = [
    [[5, 7], [7, 3], false, false],
    [[7, 5], [7, 3], true, false],
    [[5, 7], [3, 7], false, true],
    [[7, 5], [3, 7], true, true],
    [[4, 5, 7], [4, 7, 3], false, false], // a true batch
    [[4, 7, 5], [4, 3, 7], true, true],
    [[4, 5, 7], [1, 7, 3], false, false], // a batch against one matrix (folded)
    [[1, 5, 7], [4, 7, 3], false, false], // one matrix against a batch
    [[2, 3, 5, 7], [2, 3, 6, 7], false, true],
    [[2, 3, 5, 7], [7, 6], false, false], // rank 4 against a matrix
    [[33, 65], [65, 17], false, false], // odd sizes
    [[3, 1, 9], [3, 9, 1], false, false],
    [[4, 7, 5], [7, 3], true, false], // a transposed batch against one matrix (not folded)
    [[1, 5, 7], [4, 3, 7], false, true],
    [[2, 0, 7], [7, 3], false, false], // empty
    [[2, 5, 0], [0, 3], false, false],
    [[130, 257], [257, 129], false, false], // larger than a BLAS block
  ];
  for (const [sa, sb, ta, tb] of cases) {
    it(`${sa.join('x')}${ta ? 'ᵀ' : ''} @ ${sb.join('x')}${tb ? 'ᵀ' : ''}`, async () => {
      const rng = Rng.create(sa.join() + sb.join());
      const va = Array.from({ length: sa.reduce((x, y) => x * y, 1) }, () => rng.normal());
      const vb = Array.from({ length: sb.reduce((x, y) => x * y, 1) }, () => rng.normal());
      const { cpu, wasm } = await onBoth(() =>
        tf.tidy(() => {
          const y = tf.matMul(tf.tensor(va, sa), tf.tensor(vb, sb), ta, tb);
          return { shape: y.shape, values: Array.from(y.dataSync()) };
        }),
      );
      expect(wasm.shape).toEqual(cpu.shape);
      // float32 sums of k products: the rounding grows with the length of the sum
      const k = ta ? sa.at(-2)! : sa.at(-1)!;
      close(wasm.values, cpu.values, 1e-5 * Math.max(1, Math.sqrt(k / 16)));
    });
  }

  it('leaves no tensors or wasm memory behind', async () => {
    await tf.setBackend('wasm');
    const before = tf.memory();
    for (let i = 0; i < 5; i++) {
      tf.tidy(() => tf.matMul(tf.ones([4, 8, 16]), tf.ones([4, 8, 16]), false, true).dataSync());
    }
    const after = tf.memory();
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numBytes).toBe(before.numBytes);
  });
});

for (const path of PATHS) describe(`every primitive on wasm against cpu (forward and gradients; ${path.name})`, () => {
  onPath(path);
  for (const op of builtinPrimitives) {
    it(op.name, async () => {
      const t = tf as unknown as TF;
      for (const c of contractCases(op)) {
        const { inputs, params } = randomCall(op, c.shape, Rng.create(op.name), (r, n) => defaultInput(r, n));
        const specs = op.parameters(c.shape);
        const run = () =>
          tf.tidy(() => {
            const xs = inputs.map((v, i) => tf.tensor3d(v, [c.shape.batch, c.shape.seqLen, c.shape.inWidths[i]!]));
            const ps = params.map((v, i) => tf.tensor(v, specs[i]!.shape));
            const f = (...a: tf.Tensor[]) => tf.sum(tf.sin(op.apply(t, a.slice(0, xs.length) as never, a.slice(xs.length) as never, c.shape) as unknown as tf.Tensor));
            const y = Array.from((op.apply(t, xs as never, ps as never, c.shape) as unknown as tf.Tensor).dataSync());
            const grads = tf.grads(f)([...xs, ...ps]).flatMap((g) => Array.from(g.dataSync()));
            return [...y, ...grads];
          });
        const { cpu, wasm } = await onBoth(run);
        close(wasm, cpu, 1e-4);
      }
    });
  }
});

const mutants = vanillaMutants('wasm-step-mutants', 3, 32);

for (const path of PATHS) describe(`a whole training step of each baseline and of mutants on wasm (fused, stacked) against cpu (op by op) (${path.name})`, () => {
  onPath(path);
  for (const [name, dna] of [...baselines.names().map((n) => [n, baselineDna(n, { dModel: 32 })] as const), ...mutants]) {
    it(name, async () => {
      const step = () => {
        const wasm = tf.getBackend() === 'wasm';
        const lm = compileLanguageModel(dna, { tf: tf as never, vocabSize: 37, layers: 2, dModel: 32, seqLen: 12, seed: 3, stackBranches: wasm, fuseProjections: wasm });
        const out = tf.tidy(() => {
          const rng = Rng.create(9);
          const tokens = tf.tensor2d(Array.from({ length: 36 }, () => rng.int(0, 36)), [3, 12], 'int32');
          const targets = tf.tensor2d(Array.from({ length: 36 }, () => rng.int(0, 36)), [3, 12], 'int32');
          const { value, grads } = tf.variableGrads(() => lm.loss(tokens as never, targets as never) as never, lm.variables as never);
          return [value.dataSync()[0]!, ...lm.variables.flatMap((v) => Array.from(grads[v.name]!.dataSync()))];
        });
        lm.dispose();
        return out;
      };
      const { cpu, wasm } = await onBoth(step);
      expect(Math.abs(wasm[0]! - cpu[0]!)).toBeLessThan(1e-5);
      close(wasm, cpu, 1e-4);
    });
  }
});
