/**
 * Contract tests for primitives, shipped as code: built-in ops and plugin ops run the same
 * suite. Use from a vitest file:
 *
 *   import * as tf from '@tensorflow/tfjs';
 *   import { describePrimitiveContract } from '@primer-search/primitives/testing';
 *   await tf.setBackend('cpu');
 *   describePrimitiveContract(myOp, { tf });
 */
import { Rng } from '@primer-search/core';
import { describe, expect, it } from 'vitest';
import type { CallShape, PrimitiveDescriptor, TF, Tensor } from './descriptor.js';
import { initialValues } from './init.js';
import { concreteWidth, formatWidth, width, type Width, type WidthContext } from './width.js';

/** Small sizes every contract check runs at. */
export const CONTRACT_SIZES = { batch: 2, seqLen: 5, unit: 2, dimSize: 3, constant: 0.7 } as const;

export interface PrimitiveCase {
  /** Symbolic widths of the inputs. */
  inputs: Width[];
  /** Relative dimSize (bank value) for ops that read it. */
  dimSize: number;
  constant: number;
}

export interface PreparedCase extends PrimitiveCase {
  shape: CallShape;
  outWidth: Width;
}

const CANDIDATE_WIDTHS: Width[] = [width.units(2), width.units(3), width.time(), width.one()];

/** Every combination of candidate input widths the op accepts, with its concrete call shape. */
export function contractCases(op: PrimitiveDescriptor): PreparedCase[] {
  const ctx: WidthContext = { unit: CONTRACT_SIZES.unit, seqLen: CONTRACT_SIZES.seqLen };
  const combos: Width[][] =
    op.arity === 1 ? CANDIDATE_WIDTHS.map((w) => [w]) : CANDIDATE_WIDTHS.flatMap((a) => CANDIDATE_WIDTHS.map((b) => [a, b]));
  const out: PreparedCase[] = [];
  for (const inputs of combos) {
    const rule = op.outputWidth(inputs, { dimSize: CONTRACT_SIZES.dimSize });
    if ('error' in rule) continue;
    out.push(prepareCase(op, { inputs, dimSize: CONTRACT_SIZES.dimSize, constant: CONTRACT_SIZES.constant }, ctx, rule.width));
  }
  return out;
}

export function prepareCase(op: PrimitiveDescriptor, c: PrimitiveCase, ctx: WidthContext, outWidth?: Width): PreparedCase {
  const rule = outWidth ? { width: outWidth } : op.outputWidth(c.inputs, { dimSize: c.dimSize });
  if ('error' in rule) throw new Error(`${op.name}: case ${c.inputs.map(formatWidth).join(', ')} is invalid: ${rule.error}`);
  return {
    ...c,
    outWidth: rule.width,
    shape: {
      batch: CONTRACT_SIZES.batch,
      seqLen: ctx.seqLen,
      inWidths: c.inputs.map((w) => concreteWidth(w, ctx)),
      outWidth: concreteWidth(rule.width, ctx),
      dimSize: c.dimSize * ctx.unit,
      constant: c.constant,
    },
  };
}

/** Values for one input: |x| in [0.3, 1.5], random sign (away from the kinks of ABS, SIGN, LOG...). */
export function defaultInput(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.bool() ? 1 : -1) * (0.3 + 1.2 * rng.float());
  return out;
}

export interface Evaluated {
  inputs: Float32Array[];
  params: Float32Array[];
  output: Float32Array;
  outputShape: number[];
}

/** Runs `op` once on plain arrays; returns the output as a flat array. */
export function runPrimitive(
  tf: TF,
  op: PrimitiveDescriptor,
  shape: CallShape,
  inputs: Float32Array[],
  params: Float32Array[],
): { output: Float32Array; outputShape: number[] } {
  const specs = op.parameters(shape);
  return tf.tidy(() => {
    const xs = inputs.map((v, i) => tf.tensor3d(v, [shape.batch, shape.seqLen, shape.inWidths[i] as number]));
    const ps = params.map((v, i) => tf.tensor(v, specs[i]!.shape));
    const y = op.apply(tf, xs, ps, shape);
    return { output: y.dataSync() as Float32Array, outputShape: [...y.shape] };
  });
}

export function randomCall(
  op: PrimitiveDescriptor,
  shape: CallShape,
  rng: Rng,
  makeInput: (rng: Rng, n: number, index: number) => Float32Array = (r, n) => defaultInput(r, n),
): { inputs: Float32Array[]; params: Float32Array[] } {
  const inputs = shape.inWidths.map((w, i) => makeInput(rng, shape.batch * shape.seqLen * w, i));
  const params = op.parameters(shape).map((p) => {
    // Random values rather than the initialiser's, so a wrong parameter layout shows.
    const n = p.shape.reduce((a, b) => a * b, 1);
    return rng.normalArray(n, 0.2, 0.6);
  });
  return { inputs, params };
}

export interface GradientReport {
  worst: number;
  where: string;
}

/**
 * Largest disagreement between tfjs gradients and central finite differences of
 * `sum(output * w)`, over every input and parameter element. Differences are taken per
 * output element in float64, so large constant outputs (e.g. MASK's fill) do not drown them.
 */
export function gradientError(
  tf: TF,
  op: PrimitiveDescriptor,
  shape: CallShape,
  inputs: Float32Array[],
  params: Float32Array[],
  rng: Rng,
  options: { h?: number; atol?: number; rtol?: number } = {},
): GradientReport {
  const h = options.h ?? 1e-3;
  const atol = options.atol ?? 2e-3;
  const rtol = options.rtol ?? 2e-2;
  const specs = op.parameters(shape);
  const { output, outputShape } = runPrimitive(tf, op, shape, inputs, params);
  const weights = rng.uniformArray(output.length, -1, 1);
  const all = [...inputs, ...params];
  const shapes = [
    ...inputs.map((_, i) => [shape.batch, shape.seqLen, shape.inWidths[i] as number]),
    ...specs.map((s) => s.shape),
  ];
  const analytic = tf.tidy(() => {
    const vars = all.map((v, i) => tf.tensor(v, shapes[i]));
    const w = tf.tensor(weights, outputShape);
    const f = (...args: Tensor[]) => {
      const y = op.apply(tf, args.slice(0, inputs.length), args.slice(inputs.length), shape);
      return tf.sum(tf.mul(y, w));
    };
    return tf.grads(f)(vars).map((g) => g.dataSync() as Float32Array);
  });
  let worst = 0;
  let where = '';
  for (let a = 0; a < all.length; a++) {
    const base = all[a]!;
    for (let i = 0; i < base.length; i++) {
      const plus = all.map((v) => v.slice());
      const minus = all.map((v) => v.slice());
      plus[a]![i]! += h;
      minus[a]![i]! -= h;
      const yp = runPrimitive(tf, op, shape, plus.slice(0, inputs.length), plus.slice(inputs.length)).output;
      const ym = runPrimitive(tf, op, shape, minus.slice(0, inputs.length), minus.slice(inputs.length)).output;
      let numeric = 0;
      for (let k = 0; k < yp.length; k++) numeric += ((yp[k]! - ym[k]!) / (2 * h)) * weights[k]!;
      const got = analytic[a]![i]!;
      const err = Math.abs(got - numeric) / (atol + rtol * Math.abs(numeric));
      if (err > worst) {
        worst = err;
        const name = a < inputs.length ? `input${a + 1}` : `parameter ${specs[a - inputs.length]!.name}`;
        where = `${name}[${i}]: tfjs ${got.toPrecision(6)}, finite differences ${numeric.toPrecision(6)}`;
      }
    }
  }
  return { worst, where };
}

/**
 * For each position t: change every input at t, and report the positions whose output
 * changed. A causal op may change only positions >= t; a position-wise op only t.
 */
export function positionsAffected(
  tf: TF,
  op: PrimitiveDescriptor,
  shape: CallShape,
  inputs: Float32Array[],
  params: Float32Array[],
  rng: Rng,
): Array<{ t: number; changed: number[] }> {
  const base = runPrimitive(tf, op, shape, inputs, params).output;
  const rows = shape.batch * shape.seqLen;
  const res: Array<{ t: number; changed: number[] }> = [];
  for (let t = 0; t < shape.seqLen; t++) {
    const changedInputs = inputs.map((v, i) => {
      const w = shape.inWidths[i] as number;
      const c = v.slice();
      for (let b = 0; b < shape.batch; b++) {
        for (let f = 0; f < w; f++) c[(b * shape.seqLen + t) * w + f] = (rng.bool() ? 1 : -1) * (0.3 + rng.float());
      }
      return c;
    });
    const out = runPrimitive(tf, op, shape, changedInputs, params).output;
    const ow = out.length / rows;
    const changed = new Set<number>();
    for (let b = 0; b < shape.batch; b++) {
      for (let s = 0; s < shape.seqLen; s++) {
        for (let f = 0; f < ow; f++) {
          const k = (b * shape.seqLen + s) * ow + f;
          if (!Object.is(out[k], base[k])) changed.add(s);
        }
      }
    }
    res.push({ t, changed: [...changed].sort((x, y) => x - y) });
  }
  return res;
}

export interface PrimitiveContractOptions {
  tf: TF;
  /** Input values for the gradient checks (default: |x| in [0.3, 1.5]). Keep them away from the op's kinks. */
  makeInput?: (rng: Rng, n: number, index: number) => Float32Array;
  gradient?: { h?: number; atol?: number; rtol?: number } | false;
  seed?: number;
}

export function describePrimitiveContract(op: PrimitiveDescriptor, options: PrimitiveContractOptions): void {
  const { tf } = options;
  const cases = contractCases(op);
  const label = (c: PreparedCase) => c.inputs.map(formatWidth).join(', ');

  describe(`primitive ${op.name} (contract)`, () => {
    it('accepts at least one combination of input widths', () => {
      expect(cases.length).toBeGreaterThan(0);
    });

    it('returns [batch, seq, outWidth] as its shape rule says, for every accepted input width', () => {
      const rng = Rng.create(options.seed ?? 1);
      for (const c of cases) {
        const { inputs, params } = randomCall(op, c.shape, rng, options.makeInput);
        const { output, outputShape } = runPrimitive(tf, op, c.shape, inputs, params);
        expect(outputShape, `inputs ${label(c)}`).toEqual([c.shape.batch, c.shape.seqLen, c.shape.outWidth]);
        expect(output.every(Number.isFinite), `finite output for inputs ${label(c)}`).toBe(true);
      }
    });

    it('describes its parameters, FLOPs and printed code', () => {
      const rng = Rng.create(2);
      for (const c of cases) {
        const specs = op.parameters(c.shape);
        expect(new Set(specs.map((s) => s.name)).size).toBe(specs.length);
        for (const s of specs) {
          expect(s.shape.every((d) => Number.isInteger(d) && d > 0), `${s.name} shape`).toBe(true);
          const v = initialValues(s, rng);
          expect(v.length).toBe(s.shape.reduce((a, b) => a * b, 1));
          expect(v.every(Number.isFinite)).toBe(true);
        }
        const flops = op.flops(c.shape);
        expect(Number.isFinite(flops) && flops > 0, `FLOPs ${flops}`).toBe(true);
      }
      const code = op.code({ input1: 'h1', input2: 'h2', constant: '0.5', dimSize: '64' });
      expect(code).toContain('h1');
      if (op.arity === 2) expect(code).toContain('h2');
    });

    it(
      op.sequenceMixing === 'causal'
        ? 'is causal: changing position t leaves every output before t unchanged'
        : 'works position by position: changing position t changes only output t',
      () => {
        const rng = Rng.create(3);
        for (const c of cases) {
          const { inputs, params } = randomCall(op, c.shape, rng, options.makeInput);
          for (const { t, changed } of positionsAffected(tf, op, c.shape, inputs, params, rng)) {
            const bad = changed.filter((s) => (op.sequenceMixing === 'causal' ? s < t : s !== t));
            expect(bad, `inputs ${label(c)}: changing position ${t} changed outputs at ${bad.join(', ')}`).toEqual([]);
          }
        }
      },
    );

    if (options.gradient !== false) {
      it('has gradients that match finite differences', () => {
        const rng = Rng.create(4);
        for (const c of cases) {
          const { inputs, params } = randomCall(op, c.shape, rng, options.makeInput);
          const report = gradientError(tf, op, c.shape, inputs, params, rng, options.gradient || {});
          expect(report.worst, `inputs ${label(c)}: ${report.where}`).toBeLessThanOrEqual(1);
        }
      });
    }
  });
}
