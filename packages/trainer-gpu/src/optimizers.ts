import * as tfjs from '@tensorflow/tfjs';
import { PrimerError, quote } from '@primer-search/core';

import type { TF } from '@primer-search/primitives';
import type { OptimizerName } from '@primer-search/study';

/**
 * An optional fused kernel: one Adam update of one variable (inputs `v`, `m`, `s`, `g`; attrs
 * `beta1`, `beta2`, `epsilon`, `learningRate`, `correction1`, `correction2`, `gradScale`;
 * outputs the new variable, `m` and `s`) by the gradient `gradScale * g`, as the composite below
 * computes it. Where the backend registers it (the trainer does on wasm), each variable's update
 * is one kernel call instead of a dozen, and clipping costs no extra pass.
 */
export const FUSED_ADAM = 'PrimerAdam';

/**
 * An optional fused kernel: the global norm sqrt(sum of g^2) over every input tensor (inputs
 * named by position, float32; output a float32 scalar), summed in double. Where the backend
 * registers it (wasm), the clipping's norm is one call instead of two per variable and a sum.
 */
export const FUSED_GLOBAL_NORM = 'PrimerGlobalNorm';

/**
 * The global norm of `grads` (what gradient clipping compares with its threshold) as a scalar
 * tensor: the fused kernel where the backend registers it, else the composite
 * sqrt(sum over tensors of sum(g^2)). 0 for no tensors.
 */
export function globalNorm(tf: TF, grads: tfjs.Tensor[]): tfjs.Scalar {
  const t = tf as unknown as Tf;
  if (grads.length === 0) return t.scalar(0);
  if (t.getKernel(FUSED_GLOBAL_NORM, t.getBackend()) !== undefined && grads.every((g) => g.dtype === 'float32')) {
    return t.engine().runKernel(FUSED_GLOBAL_NORM, Object.fromEntries(grads.map((g, i) => [String(i), g])) as never) as tfjs.Scalar;
  }
  return t.tidy(() => {
    const squares = grads.map((g) => t.sum(t.square(g)));
    // on WebGPU stacked and summed: a kernel binds a bounded number of buffers there (8 by
    // default), and tfjs's concat splits its inputs to fit while its addN does not
    return t.sqrt(t.getBackend() === 'webgpu' ? t.sum(t.stack(squares)) : t.addN(squares)) as tfjs.Scalar;
  });
}

/** The namespace the optimizers run on (typed as this package's tfjs; injected by `createOptimizer`). */
type Tf = typeof tfjs;

/** A tensor's values and shape, as saved in a checkpoint. */
export interface Slot {
  values: Float32Array;
  shape: number[];
}

/**
 * An optimizer whose learning rate the schedule sets before each step. Its state is keyed by
 * variable, never by position: a variable that gets no gradient in a step (or never) has no
 * state, and the others' state stays with them.
 */
export interface ScheduledOptimizer {
  name: OptimizerName;
  setLearningRate(lr: number): void;
  /**
   * Gradients keyed by tfjs variable name, each multiplied by `scale` first (the clipping's
   * factor; default 1); variables missing from `grads` are left as they are.
   */
  applyGradients(grads: tfjs.NamedTensorMap, scale?: number): void;
  /**
   * Its state as named slots (`step`, `<variable>/<slot>`), the variables named by `names`
   * (tfjs variable name -> the model's stable name), so a checkpoint survives another model
   * instance whose tfjs names differ. Read asynchronously: a GPU backend has no synchronous
   * read in Node.
   */
  saveSlots(names: Map<string, string>): Promise<Record<string, Slot>>;
  /** Restores what `saveSlots` returned; a slot of a variable not in `names` is refused. */
  loadSlots(names: Map<string, string>, slots: Record<string, Slot>): void;
  dispose(): void;
}

const slotOf = async (t: tfjs.Tensor): Promise<Slot> => ({ values: Float32Array.from((await t.data()) as Float32Array), shape: [...t.shape] });

/**
 * State per variable, keyed by its tfjs name; saved and loaded under its stable name, each
 * slot under its own name.
 */
class SlotTable {
  constructor(private readonly tf: Tf) {}

  readonly state = new Map<string, Map<string, tfjs.Variable>>();

  get(variable: string, slot: string, init: () => tfjs.Tensor): tfjs.Variable {
    let slots = this.state.get(variable);
    if (!slots) this.state.set(variable, (slots = new Map()));
    let v = slots.get(slot);
    // inside tidy: the variable keeps its own reference, the initial tensor is disposed
    if (!v) slots.set(slot, (v = this.tf.tidy(() => this.tf.variable(init(), false))));
    return v;
  }

  async save(step: number, names: Map<string, string>): Promise<Record<string, Slot>> {
    const out: Record<string, Slot> = { step: { values: Float32Array.of(step), shape: [] } };
    for (const [variable, slots] of this.state) {
      const stable = names.get(variable);
      if (stable === undefined) throw new PrimerError('OPTIMIZER', `the optimizer holds state for ${variable}, which is not one of the model's variables`);
      for (const [slot, v] of slots) out[`${stable}/${slot}`] = await slotOf(v);
    }
    return out;
  }

  /** Restores saved slots (each slot's shape as `shapeOf` says for its variable); returns the saved step. */
  load(names: Map<string, string>, saved: Record<string, Slot>, shapeOf: Record<string, (variable: number[]) => number[]>): number {
    const byStable = new Map([...names].map(([tfName, stable]) => [stable, tfName]));
    this.dispose();
    for (const [key, s] of Object.entries(saved)) {
      if (key === 'step') continue;
      const cut = key.lastIndexOf('/');
      const [stable, slot] = [key.slice(0, cut), key.slice(cut + 1)];
      const variable = byStable.get(stable);
      const expected = shapeOf[slot];
      if (variable === undefined || !expected) {
        throw new PrimerError('BAD_CHECKPOINT', `the checkpoint's optimizer state ${key} belongs to no variable of this model`);
      }
      const want = expected(variableNamed(this.tf, variable).shape);
      if (want.join('x') !== s.shape.join('x') || s.values.length !== want.reduce((a, b) => a * b, 1)) {
        throw new PrimerError('BAD_CHECKPOINT', `the checkpoint's optimizer state ${key} is ${s.shape.join('x')}, not ${want.join('x')}`);
      }
      this.get(variable, slot, () => this.tf.tensor(s.values, s.shape));
    }
    return saved.step?.values[0] ?? 0;
  }

  dispose(): void {
    for (const slots of this.state.values()) for (const v of slots.values()) v.dispose();
    this.state.clear();
  }
}

const same = (shape: number[]) => shape;

const variableNamed = (tf: Tf, name: string): tfjs.Variable => {
  const v = tf.engine().registeredVariables[name];
  if (!v) throw new PrimerError('OPTIMIZER', `no variable named ${name}`);
  return v;
};

/**
 * Adam with Tensor2Tensor's Transformer settings (beta2 0.98, epsilon 1e-9), written here
 * rather than taken from tfjs: tfjs's Adam binds its moments to the position of a gradient
 * in the list it is given, so a step where one variable has no gradient shifts every later
 * variable onto another's moments. The bias corrections are computed from the step count,
 * so a resumed run continues bit for bit.
 */
function adam(tf: Tf, beta1 = 0.9, beta2 = 0.98, epsilon = 1e-9): ScheduledOptimizer {
  let lr = 1e-3;
  let step = 0;
  const slots = new SlotTable(tf);
  return {
    name: 'adam',
    setLearningRate: (v) => (lr = v),
    applyGradients(grads, scale = 1) {
      step++;
      const correction1 = 1 - beta1 ** step;
      const correction2 = 1 - beta2 ** step;
      const fused = tf.getKernel(FUSED_ADAM, tf.getBackend()) !== undefined;
      tf.tidy(() => {
        for (const [name, raw] of Object.entries(grads)) {
          const v = variableNamed(tf, name);
          const m = slots.get(name, 'm', () => tf.zerosLike(v));
          const s = slots.get(name, 'v', () => tf.zerosLike(v));
          if (fused && raw.dtype === 'float32') {
            const attrs = { beta1, beta2, epsilon, learningRate: lr, correction1, correction2, gradScale: scale };
            const [v2, m2, s2] = tf.engine().runKernel(FUSED_ADAM, { v, m, s, g: raw } as never, attrs as never) as unknown as tfjs.Tensor[];
            m.assign(m2!);
            s.assign(s2!);
            v.assign(v2!);
            continue;
          }
          const g = scale === 1 ? raw : tf.mul(raw, scale);
          m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
          s.assign(tf.add(tf.mul(s, beta2), tf.mul(tf.square(g), 1 - beta2)));
          const mHat = tf.div(m, correction1);
          const vHat = tf.div(s, correction2);
          v.assign(tf.sub(v, tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), epsilon)), lr)));
        }
      });
    },
    saveSlots: (names) => slots.save(step, names),
    loadSlots: (names, saved) => {
      step = slots.load(names, saved, { m: same, v: same });
    },
    dispose: () => slots.dispose(),
  };
}

/**
 * Adafactor (Shazeer & Stern, 2018) as the paper's search used it, with an explicit learning
 * rate: factored second moments over the last two axes of matrices (full ones for vectors),
 * decay 1 - t^-0.8, no momentum, updates clipped to RMS 1.
 */
function adafactor(tf: Tf): ScheduledOptimizer {
  let lr = 1e-2;
  let step = 0;
  const slots = new SlotTable(tf);
  const EPS = 1e-30;
  return {
    name: 'adafactor',
    setLearningRate: (v) => (lr = v),
    applyGradients(grads, scale = 1) {
      step++;
      const decay = 1 - step ** -0.8;
      tf.tidy(() => {
        for (const [name, raw] of Object.entries(grads)) {
          const v = variableNamed(tf, name);
          const g = scale === 1 ? raw : tf.mul(raw, scale);
          const g2 = tf.add(tf.square(g), EPS);
          let update: tfjs.Tensor;
          if (g.rank >= 2) {
            const row = slots.get(name, 'row', () => tf.zerosLike(tf.mean(g2, -1)));
            const col = slots.get(name, 'col', () => tf.zerosLike(tf.mean(g2, -2)));
            row.assign(tf.add(tf.mul(row, decay), tf.mul(tf.mean(g2, -1), 1 - decay)));
            col.assign(tf.add(tf.mul(col, decay), tf.mul(tf.mean(g2, -2), 1 - decay)));
            const rowFactor = tf.rsqrt(tf.div(row, tf.mean(row, -1, true)));
            update = tf.mul(tf.mul(g, tf.expandDims(rowFactor, -1)), tf.expandDims(tf.rsqrt(col), -2));
          } else {
            const full = slots.get(name, 'full', () => tf.zerosLike(g2));
            full.assign(tf.add(tf.mul(full, decay), tf.mul(g2, 1 - decay)));
            update = tf.mul(g, tf.rsqrt(full));
          }
          const rms = tf.sqrt(tf.mean(tf.square(update)));
          update = tf.div(update, tf.maximum(1, rms));
          v.assign(tf.sub(v, tf.mul(update, lr)));
        }
      });
    },
    saveSlots: (names) => slots.save(step, names),
    loadSlots: (names, saved) => {
      step = slots.load(names, saved, { row: (s) => s.slice(0, -1), col: (s) => [...s.slice(0, -2), s.at(-1)!], full: same });
    },
    dispose: () => slots.dispose(),
  };
}

/**
 * `adam` or `adafactor`, on the TensorFlow.js namespace `tf` (the one the model was compiled
 * with; default this package's `@tensorflow/tfjs`).
 */
export function createOptimizer(name: OptimizerName, tf: TF = tfjs as unknown as TF): ScheduledOptimizer {
  const t = tf as unknown as Tf;
  if (name === 'adam') return adam(t);
  if (name === 'adafactor') return adafactor(t);
  throw new PrimerError('BAD_OPTIMIZER', `unknown optimizer ${quote(name)}; choose adam or adafactor`);
}

/** Linear warmup to `peak`, then inverse-square-root decay (the paper's schedule). */
export function learningRate(step: number, peak: number, warmupSteps: number): number {
  const s = step + 1;
  if (warmupSteps <= 0) return peak;
  return peak * Math.min(s / warmupSteps, Math.sqrt(warmupSteps / s));
}
