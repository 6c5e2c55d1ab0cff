import * as tf from '@tensorflow/tfjs';
import { PrimerError } from '@primer-search/core';

export type OptimizerName = 'adam' | 'adafactor';

/** An optimizer whose learning rate the schedule sets before each step. */
export interface ScheduledOptimizer {
  name: OptimizerName;
  setLearningRate(lr: number): void;
  applyGradients(grads: tf.NamedTensorMap): void;
  /** Its state (moments, step count), given the model's variables (tfjs names) in their fixed order. */
  saveSlots(order: string[]): Promise<Slot[]>;
  loadSlots(order: string[], slots: Slot[]): Promise<void>;
  dispose(): void;
}

export interface Slot {
  values: Float32Array;
  shape: number[];
}

const slotOf = (t: tf.Tensor): Slot => ({ values: Float32Array.from(t.dataSync() as Float32Array), shape: [...t.shape] });

/** Adam with Tensor2Tensor's Transformer settings (beta2 0.98, epsilon 1e-9). */
function adam(): ScheduledOptimizer {
  const opt = tf.train.adam(1e-3, 0.9, 0.98, 1e-9);
  return {
    name: 'adam',
    // tfjs reads `learningRate` on every applyGradients
    setLearningRate: (lr) => ((opt as unknown as { learningRate: number }).learningRate = lr),
    applyGradients: (g) => opt.applyGradients(g as Parameters<typeof opt.applyGradients>[0]),
    // tfjs keeps Adam's moments in the order gradients arrive (our variable order): [iterations, m..., v...]
    saveSlots: async () => (await opt.getWeights()).map((w) => slotOf(w.tensor)),
    loadSlots: async (_order, slots) => {
      if (slots.length === 0) return;
      const half = (slots.length - 1) / 2;
      await opt.setWeights(
        slots.map((s, i) => ({
          name: i === 0 ? 'iter' : `slot${i}/${i <= half ? 'm' : 'v'}`,
          tensor: i === 0 ? tf.scalar(s.values[0]!) : tf.tensor(s.values, s.shape),
        })),
      );
    },
    dispose: () => opt.dispose(),
  };
}

/**
 * Adafactor (Shazeer & Stern, 2018) as the paper's search used it, with an explicit learning
 * rate: factored second moments over the last two axes of matrices (full ones for vectors),
 * decay 1 - t^-0.8, no momentum, updates clipped to RMS 1.
 */
function adafactor(): ScheduledOptimizer {
  let lr = 1e-2;
  let step = 0;
  const state = new Map<string, tf.Variable[]>();
  const EPS = 1e-30;
  return {
    name: 'adafactor',
    setLearningRate: (v) => (lr = v),
    applyGradients(grads) {
      step++;
      const decay = 1 - step ** -0.8;
      const vars = tf.engine().registeredVariables;
      tf.tidy(() => {
        for (const [name, g] of Object.entries(grads)) {
          const v = vars[name];
          if (!v) throw new PrimerError('OPTIMIZER', `adafactor: no variable named ${name}`);
          const g2 = tf.add(tf.square(g), EPS);
          let update: tf.Tensor;
          if (g.rank >= 2) {
            if (!state.has(name)) {
              state.set(name, [
                tf.variable(tf.zerosLike(tf.mean(g2, -1)), false),
                tf.variable(tf.zerosLike(tf.mean(g2, -2)), false),
              ]);
            }
            const [row, col] = state.get(name)!;
            row!.assign(tf.add(tf.mul(row!, decay), tf.mul(tf.mean(g2, -1), 1 - decay)));
            col!.assign(tf.add(tf.mul(col!, decay), tf.mul(tf.mean(g2, -2), 1 - decay)));
            const rowFactor = tf.rsqrt(tf.div(row!, tf.mean(row!, -1, true)));
            update = tf.mul(tf.mul(g, tf.expandDims(rowFactor, -1)), tf.expandDims(tf.rsqrt(col!), -2));
          } else {
            if (!state.has(name)) state.set(name, [tf.variable(tf.zerosLike(g2), false)]);
            const [full] = state.get(name)!;
            full!.assign(tf.add(tf.mul(full!, decay), tf.mul(g2, 1 - decay)));
            update = tf.mul(g, tf.rsqrt(full!));
          }
          const rms = tf.sqrt(tf.mean(tf.square(update)));
          update = tf.div(update, tf.maximum(1, rms));
          v.assign(tf.sub(v, tf.mul(update, lr)));
        }
      });
    },
    // [step, then for each variable in order: its row and column (or full) second moments]
    saveSlots: async (order) => [
      { values: Float32Array.of(step), shape: [1] },
      ...order.flatMap((name) => (state.get(name) ?? []).map(slotOf)),
    ],
    loadSlots: async (order, slots) => {
      if (slots.length === 0) return;
      step = slots[0]!.values[0]!;
      let k = 1;
      for (const name of order) {
        const g = tf.engine().registeredVariables[name];
        if (!g) throw new PrimerError('BAD_CHECKPOINT', `adafactor: no variable named ${name}`);
        const count = g.rank >= 2 ? 2 : 1;
        if (k + count > slots.length) break; // variables never updated have no state yet
        state.get(name)?.forEach((v) => v.dispose());
        state.set(
          name,
          slots.slice(k, k + count).map((sl) => tf.variable(tf.tensor(sl.values, sl.shape), false)),
        );
        k += count;
      }
    },
    dispose: () => {
      for (const vs of state.values()) for (const v of vs) v.dispose();
      state.clear();
    },
  };
}

export function createOptimizer(name: OptimizerName): ScheduledOptimizer {
  if (name === 'adam') return adam();
  if (name === 'adafactor') return adafactor();
  throw new PrimerError('BAD_OPTIMIZER', `unknown optimizer "${String(name)}"; choose adam or adafactor`);
}

/** Linear warmup to `peak`, then inverse-square-root decay (the paper's schedule). */
export function learningRate(step: number, peak: number, warmupSteps: number): number {
  const s = step + 1;
  if (warmupSteps <= 0) return peak;
  return peak * Math.min(s / warmupSteps, Math.sqrt(warmupSteps / s));
}
