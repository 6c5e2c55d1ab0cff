import { Rng } from '@primer-search/core';
import { describe, expect, it } from 'vitest';
import { tf } from './__fixtures__/tf-cpu.js';
import type { CallShape, ParamSpec } from './descriptor.js';
import { initialValues } from './init.js';
import { builtinPrimitives, createPrimitiveRegistry, primitives } from './registry.js';
import { contractCases, describePrimitiveContract, randomCall, runPrimitive } from './testing.js';
import { width } from './width.js';

type Nested = number[][][];
type Ref = (xs: Nested[], ps: Float32Array[], s: CallShape) => Nested;

// ---------------------------------------------------------------------------------------
// Hand-written references: plain loops over nested arrays, written from the docs, sharing
// no code with the implementations.
// ---------------------------------------------------------------------------------------

const nest = (v: Float32Array, b: number, s: number, w: number): Nested =>
  Array.from({ length: b }, (_, i) => Array.from({ length: s }, (_, t) => Array.from(v.subarray((i * s + t) * w, (i * s + t + 1) * w))));

/** Element f of row (b, t) under the alignment rule: width 1 broadcasts, missing columns are 0. */
const at = (x: Nested, b: number, t: number, f: number): number => {
  const row = x[b]![t]!;
  return row.length === 1 ? row[0]! : f < row.length ? row[f]! : 0;
};

const build = (s: CallShape, fn: (b: number, t: number, f: number) => number): Nested =>
  Array.from({ length: s.batch }, (_, b) =>
    Array.from({ length: s.seqLen }, (_, t) => Array.from({ length: s.outWidth }, (_, f) => fn(b, t, f))),
  );

const binaryRef = (fn: (a: number, b: number) => number): Ref => ([x, y], _p, s) =>
  build(s, (b, t, f) => fn(at(x!, b, t, f), at(y!, b, t, f)));
const unaryRef = (fn: (a: number) => number): Ref => ([x], _p, s) => build(s, (b, t, f) => fn(x![b]![t]![f]!));
const reduceRef = (fn: (row: number[]) => number): Ref => ([x], _p, s) => build(s, (b, t) => fn(x![b]![t]!));
const safeDen = (y: number) => (Math.abs(y) >= 1e-6 ? y : y < 0 ? -1e-6 : 1e-6);

const convRef = (k: number): Ref => ([x], [kernel], s) => {
  const w = s.inWidths[0]!;
  return build(s, (b, t, o) => {
    let acc = 0;
    for (let lag = 0; lag < k; lag++) {
      if (t - lag < 0) continue;
      for (let c = 0; c < w; c++) acc += x![b]![t - lag]![c]! * kernel![(lag * w + c) * s.outWidth + o]!;
    }
    return acc;
  });
};
const dconvRef = (k: number): Ref => ([x], [kernel], s) =>
  build(s, (b, t, c) => {
    let acc = 0;
    for (let lag = 0; lag < k && t - lag >= 0; lag++) acc += kernel![lag * s.outWidth + c]! * x![b]![t - lag]![c]!;
    return acc;
  });

const references: Record<string, Ref> = {
  ADD: binaryRef((a, b) => a + b),
  DIFFERENCE: binaryRef((a, b) => a - b),
  MULTIPLY: binaryRef((a, b) => a * b),
  DIVIDE: binaryRef((a, b) => a / safeDen(b)),
  MAX: binaryRef(Math.max),
  MIN: binaryRef(Math.min),
  ABS_ROOT: unaryRef((a) => Math.sqrt(Math.abs(a) + 1e-6)),
  SQUARE: unaryRef((a) => a * a),
  EXP: unaryRef((a) => Math.exp(Math.min(a, 30))),
  LOG: unaryRef((a) => Math.log(Math.max(Math.abs(a), 1e-6))),
  ABS: unaryRef(Math.abs),
  RECIP: unaryRef((a) => 1 / safeDen(a)),
  SIGN: unaryRef(Math.sign),
  COS: unaryRef(Math.cos),
  SIN: unaryRef(Math.sin),
  TANH: unaryRef(Math.tanh),
  SIGMOID: unaryRef((a) => 1 / (1 + Math.exp(-a))),
  C_MUL: ([x], _p, s) => build(s, (b, t, f) => x![b]![t]![f]! * s.constant),
  SCALE: ([x], [scale], s) => build(s, (b, t, f) => x![b]![t]![f]! * scale![f]!),
  SHIFT: ([x], [shift], s) => build(s, (b, t, f) => x![b]![t]![f]! + shift![f]!),
  RED_MEAN: reduceRef((r) => r.reduce((a, b) => a + b, 0) / r.length),
  RED_SUM: reduceRef((r) => r.reduce((a, b) => a + b, 0)),
  RED_MIN: reduceRef((r) => Math.min(...r)),
  RED_MAX: reduceRef((r) => Math.max(...r)),
  RED_PROD: reduceRef((r) => r.reduce((a, b) => a * b, 1)),
  MAT_MUL: ([a, v], _p, s) =>
    build(s, (b, t, f) => {
      let acc = 0;
      for (let j = 0; j <= t; j++) acc += a![b]![t]![j]! * at(v!, b, j, f);
      return acc;
    }),
  T_MAT_MUL: ([a, c], _p, s) => {
    const wa = s.inWidths[0]!;
    const contracted = wa === 1 ? s.inWidths[1]! : wa;
    return build(s, (b, t, j) => {
      if (j > t) return 0;
      let acc = 0;
      for (let f = 0; f < contracted; f++) acc += at(a!, b, t, f) * at(c!, b, j, f);
      return acc;
    });
  },
  CONV_1X1: convRef(1),
  CONV_3X1: convRef(3),
  CONV_7X1: convRef(7),
  CONV_15X1: convRef(15),
  CONV_31X1: convRef(31),
  DCONV_3X1: dconvRef(3),
  DCONV_7X1: dconvRef(7),
  DCONV_15X1: dconvRef(15),
  DCONV_31X1: dconvRef(31),
  MASK: ([x], _p, s) => build(s, (b, t, j) => (j > t ? -1e9 : x![b]![t]![j]!)),
  CUM_SUM: ([x], _p, s) =>
    build(s, (b, t, f) => {
      let acc = 0;
      for (let j = 0; j <= t; j++) acc += x![b]![j]![f]!;
      return acc;
    }),
  CUM_PROD: ([x], _p, s) =>
    build(s, (b, t, f) => {
      let acc = 1;
      for (let j = 0; j <= t; j++) acc *= x![b]![j]![f]!;
      return acc;
    }),
};

// Inputs that keep finite differences away from each op's kinks.
const grid = (offset: number) => (rng: Rng, n: number) => {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = 0.25 * rng.int(-5, 5) + offset;
  return v;
};
const distinctInRow = (rng: Rng, n: number) => {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = 0.1 * rng.int(-12, 12) + 0.05 + 0.003 * (i % 8);
  return v;
};
const inputMakers: Record<string, (rng: Rng, n: number, index: number) => Float32Array> = {
  // input1 is 0.1 and input2 0.2 above a multiple of 0.25: never equal, never 0.
  MAX: (rng, n, i) => grid(i === 0 ? 0.1 : 0.2)(rng, n),
  MIN: (rng, n, i) => grid(i === 0 ? 0.1 : 0.2)(rng, n),
  RED_MAX: distinctInRow,
  RED_MIN: distinctInRow,
};

describe('built-in vocabulary', () => {
  it('holds every op of the paper (primer-paper.md §1)', () => {
    const paper = [
      'ADD', 'DIFFERENCE', 'MULTIPLY', 'DIVIDE', 'MAX', 'MIN', 'ABS_ROOT', 'SQUARE', 'EXP', 'LOG', 'ABS', 'RECIP',
      'SIGN', 'COS', 'SIN', 'TANH', 'SIGMOID', 'C_MUL', 'SCALE', 'SHIFT', 'RED_MEAN', 'RED_SUM', 'RED_MIN', 'RED_MAX',
      'RED_PROD', 'MAT_MUL', 'T_MAT_MUL', 'CONV_1X1', 'CONV_3X1', 'CONV_7X1', 'CONV_15X1', 'CONV_31X1', 'DCONV_3X1',
      'DCONV_7X1', 'DCONV_15X1', 'DCONV_31X1', 'MASK', 'CUM_SUM', 'CUM_PROD',
    ];
    expect(primitives.names()).toEqual(paper);
  });

  it('has a hand-written reference test for every registered primitive (meta-test)', () => {
    const missing = primitives.names().filter((n) => !references[n]);
    expect(missing, 'primitives without a reference in primitives.test.ts').toEqual([]);
  });

  it('can export every built-in as code (each has an emit template)', () => {
    expect(builtinPrimitives.filter((d) => typeof d.emit !== 'function').map((d) => d.name)).toEqual([]);
  });

  it('rejects malformed plugin descriptors with the reason', () => {
    const r = createPrimitiveRegistry();
    const add = r.get('ADD');
    expect(() => r.register('CALL', { ...add, name: 'CALL' })).toThrow(/reserved/);
    expect(() => r.register('ADD2', add)).toThrow(/differs from the registered name/);
    expect(() => r.register('NOARITY', { ...add, name: 'NOARITY', arity: 3 as never })).toThrow(/arity must be 1 or 2/);
    expect(() => r.register('NODOC', { ...add, name: 'NODOC', doc: '' })).toThrow(/doc must say/);
    expect(() => r.register('ADD', add)).toThrow(/already registered/);
  });
});

describe('forward values against hand-written references', () => {
  for (const op of builtinPrimitives) {
    it(op.name, () => {
      const rng = Rng.create(op.name);
      const cases = contractCases(op);
      expect(cases.length).toBeGreaterThan(0);
      for (const c of cases) {
        const { inputs, params } = randomCall(op, c.shape, rng, inputMakers[op.name]);
        const got = runPrimitive(tf, op, c.shape, inputs, params).output;
        const xs = inputs.map((v, i) => nest(v, c.shape.batch, c.shape.seqLen, c.shape.inWidths[i]!));
        const want = references[op.name]!(xs, params, c.shape).flat(2);
        expect(got.length).toBe(want.length);
        for (let k = 0; k < want.length; k++) {
          const tol = 1e-5 * Math.max(1, Math.abs(want[k]!));
          if (!(Math.abs(got[k]! - want[k]!) <= tol)) {
            throw new Error(`${op.name} inputs ${c.shape.inWidths.join('x')}: element ${k} is ${got[k]}, reference ${want[k]}`);
          }
        }
      }
    });
  }
});

describe('initialisers', () => {
  it('draw the same values from the same seed, within their documented ranges', () => {
    const spec: ParamSpec = { name: 'kernel', shape: [8, 16], init: { kind: 'glorot-uniform', fanIn: 8, fanOut: 16 } };
    const a = initialValues(spec, Rng.create(1));
    expect(Array.from(a)).toEqual(Array.from(initialValues(spec, Rng.create(1))));
    const limit = Math.sqrt(6 / 24);
    expect(a.every((v) => Math.abs(v) <= limit)).toBe(true);
    expect(Math.max(...a)).toBeGreaterThan(limit * 0.8);
  });

  it('give the released Primer MDHA kernel to DCONV_3X1', () => {
    const op = primitives.get('DCONV_3X1');
    const [spec] = op.parameters({ batch: 1, seqLen: 4, inWidths: [2], outWidth: 2, dimSize: 0, constant: 0 });
    expect(Array.from(initialValues(spec!, Rng.create(0)))).toEqual([0.5, 0.5, 0.5 / 3, 0.5 / 3, 0.5 / 3, 0.5 / 3].map(Math.fround));
  });
});

describe('shape rules', () => {
  it('reject non-score inputs to MAT_MUL and MASK, naming the field', () => {
    expect(primitives.get('MAT_MUL').outputWidth([width.units(8), width.units(8)], { dimSize: 1 })).toEqual({
      error: 'MAT_MUL needs input1 of shape [batch, seq, seq] (attention scores), got width 8u',
      field: 'input1',
    });
    expect(primitives.get('MASK').outputWidth([width.one()], { dimSize: 1 })).toMatchObject({ field: 'input1' });
    expect(primitives.get('T_MAT_MUL').outputWidth([width.units(2), width.units(2)], { dimSize: 1 })).toEqual({
      width: width.time(),
    });
  });
});

for (const op of builtinPrimitives) {
  describePrimitiveContract(op, { tf, makeInput: inputMakers[op.name] });
}
