// A compiled training step: the forward and backward kernel sequence of one step, recorded once
// (shapes are fixed for a run) and replayed on later steps without tfjs's tape, scopes,
// gradient functions and per-op bookkeeping. Each intermediate is freed right after its last
// use. Anything it cannot replay falls back to the tape, with the reason kept.
import type * as tfjs from '@tensorflow/tfjs';

type Tf = typeof tfjs;

/** The backend calls a replay makes (the wasm and cpu backends have them). */
interface Backend {
  incRef(dataId: tfjs.DataId): void;
  disposeData(dataId: tfjs.DataId, force?: boolean): boolean;
}

/** Where a recorded kernel's input comes from at replay. */
type Source =
  | { kind: 'slot'; slot: number }
  | { kind: 'variable'; variable: tfjs.Variable }
  | { kind: 'input'; index: number }
  | { kind: 'constant'; info: tfjs.TensorInfo };

interface Op {
  name: string;
  config: tfjs.KernelConfig;
  inputs: Array<[string, Source, number[], tfjs.DataType]>;
  attrs: tfjs.NamedAttrMap;
  /** The inputs were given as an array (Concat, AddN), not by name. */
  listed: boolean;
  /** The slot of each output, in order. */
  outputs: number[];
  array: boolean;
  /** Slots to free right after this kernel (their last reader, or their producer when nothing reads them). */
  free: number[];
}

interface Program {
  ops: Op[];
  /** The loss's source, then each gradient's (by variable name). */
  value: Source;
  grads: Array<[string, Source]>;
  /** Constants kept alive by the program (one reference each), freed by dispose. */
  constants: tfjs.TensorInfo[];
  /** Shapes and dtypes the inputs were recorded with. */
  inputs: Array<{ shape: number[]; dtype: tfjs.DataType }>;
  /** Kernels whose registration a replay checks first (a re-registered kernel means record again). */
  kernels: Map<string, tfjs.KernelConfig>;
}

/** Kernels whose result is not a function of their inputs and attributes: a step using one is not replayed. */
const STATEFUL = new Set(['RandomUniform', 'RandomNormal', 'RandomStandardNormal', 'RandomGamma', 'Multinomial', 'TruncatedNormal', 'Dropout']);

/**
 * Whether training steps are compiled (recorded once, replayed; see CompiledStep): on unless
 * PRIMER_COMPILED_STEP=off, the escape hatch and the A/B switch.
 */
export function compiledStepsOn(): boolean {
  return process.env.PRIMER_COMPILED_STEP !== 'off';
}

/** What `CompiledStep.status` reports. */
export type CompiledStepStatus = { state: 'recording' | 'verifying' | 'replaying' } | { state: 'tape'; reason: string };

/** The loss and the gradients of the variables, as `tf.variableGrads` returns them. */
export type StepResult = {
  value: tfjs.Scalar;
  grads: tfjs.NamedTensorMap;
};

/**
 * The loss and gradients of `loss(inputs)` with respect to `variables`, as tf.variableGrads
 * computes them, compiled: the first call records the kernels the tape runs (forward and
 * backward), the second runs the tape and the recording on the same inputs and compares them
 * bit for bit, and from the third on only the recording runs. Falls back to the tape for good
 * (`status` says why) on a backend without reference counts, a kernel drawing random numbers, a
 * result that differs, or a kernel registered anew since; for one call when the inputs' shapes
 * differ from the recorded ones.
 */
export class CompiledStep {
  private program: Program | undefined;
  private state: CompiledStepStatus = { state: 'recording' };

  constructor(
    private readonly tf: Tf,
    private readonly loss: (...inputs: tfjs.Tensor[]) => tfjs.Scalar,
    private readonly variables: tfjs.Variable[],
  ) {
    const backend = tf.backend() as unknown as Partial<Backend>;
    if (typeof backend.incRef !== 'function' || typeof backend.disposeData !== 'function') {
      this.state = { state: 'tape', reason: `the ${tf.getBackend()} backend has no reference counts to replay with` };
    }
  }

  get status(): CompiledStepStatus {
    return this.state;
  }

  private tape(inputs: tfjs.Tensor[]): StepResult {
    return this.tf.variableGrads(() => this.loss(...inputs), this.variables);
  }

  private fallBack(reason: string): void {
    this.dispose();
    this.state = { state: 'tape', reason };
  }

  run(...inputs: tfjs.Tensor[]): StepResult {
    if (this.state.state === 'tape') return this.tape(inputs);
    if (this.state.state === 'recording') {
      const r = this.record(inputs);
      if (this.state.state === 'recording') this.state = { state: 'verifying' };
      return r;
    }
    const program = this.program!;
    if (!inputs.every((x, i) => x.dtype === program.inputs[i]?.dtype && sameShape(x.shape, program.inputs[i]!.shape)) || inputs.length !== program.inputs.length) {
      return this.tape(inputs);
    }
    const changed = [...program.kernels].find(([name, config]) => this.tf.getKernel(name, this.tf.getBackend()) !== config);
    if (changed) {
      this.fallBack(`the kernel ${changed[0]} was registered anew after the step was recorded`);
      return this.tape(inputs);
    }
    if (this.state.state === 'verifying') {
      const taped = this.tape(inputs);
      const replayed = this.replay(program, inputs);
      const differs = firstDifference(taped, replayed);
      this.tf.dispose([replayed.value, ...Object.values(replayed.grads)]);
      if (differs) this.fallBack(`the replayed step differs from the taped one (${differs})`);
      else this.state = { state: 'replaying' };
      return taped;
    }
    return this.replay(program, inputs);
  }

  /** Frees what the recording keeps (its constants); later calls record again. */
  dispose(): void {
    if (this.program) {
      const backend = this.tf.backend() as unknown as Backend;
      for (const c of this.program.constants) backend.disposeData(c.dataId);
    }
    this.program = undefined;
    if (this.state.state !== 'tape') this.state = { state: 'recording' };
  }

  /** Runs the tape, recording every kernel it calls (outermost calls only). */
  private record(inputs: tfjs.Tensor[]): StepResult {
    const tf = this.tf;
    const backendName = tf.getBackend();
    const backend = tf.backend() as unknown as Backend;
    const configs = tf.getKernelsForBackend(backendName);
    const originals = configs.map((c) => c.kernelFunc);
    const ops: Op[] = [];
    /** The slot that last produced each data id. */
    const produced = new Map<tfjs.DataId, number>();
    const slotInfo: tfjs.TensorInfo[] = [];
    const variableOf = new Map(this.variables.map((v) => [v.dataId, v]));
    const inputOf = new Map(inputs.map((x, i) => [x.dataId, i]));
    const constants = new Map<tfjs.DataId, tfjs.TensorInfo>();
    const kernels = new Map<string, tfjs.KernelConfig>();
    let depth = 0;
    let refused: string | undefined;
    const sourceOf = (info: tfjs.TensorInfo): Source => {
      const slot = produced.get(info.dataId);
      if (slot !== undefined) return { kind: 'slot', slot };
      const v = variableOf.get(info.dataId);
      if (v) return { kind: 'variable', variable: v };
      const i = inputOf.get(info.dataId);
      if (i !== undefined) return { kind: 'input', index: i };
      let c = constants.get(info.dataId);
      if (!c) {
        // made outside any kernel (a scalar of an op, the backward pass's ones): kept, one reference of ours
        backend.incRef(info.dataId);
        c = { dataId: info.dataId, shape: [...info.shape], dtype: info.dtype };
        constants.set(info.dataId, c);
      }
      return { kind: 'constant', info: c };
    };
    configs.forEach((config, k) => {
      const original = originals[k]!;
      config.kernelFunc = ((args: { inputs: tfjs.NamedTensorInfoMap; attrs?: tfjs.NamedAttrMap; backend: unknown }) => {
        if (depth > 0) return original(args as never);
        if (STATEFUL.has(config.kernelName)) refused ??= `the step runs ${config.kernelName}, whose result is not a function of its inputs`;
        const ins = Object.entries(args.inputs).map(([name, t]) => [name, sourceOf(t!), [...t!.shape], t!.dtype] as Op['inputs'][number]);
        depth++;
        let out: tfjs.TensorInfo | tfjs.TensorInfo[];
        try {
          out = original(args as never) as tfjs.TensorInfo | tfjs.TensorInfo[];
        } finally {
          depth--;
        }
        const outs = Array.isArray(out) ? out : [out];
        const slots = outs.map((o) => {
          const slot = slotInfo.length;
          slotInfo.push({ dataId: o.dataId, shape: [...o.shape], dtype: o.dtype });
          produced.set(o.dataId, slot);
          return slot;
        });
        kernels.set(config.kernelName, config);
        ops.push({ name: config.kernelName, config: { ...config, kernelFunc: original }, inputs: ins, attrs: { ...(args.attrs ?? {}) }, listed: Array.isArray(args.inputs), outputs: slots, array: Array.isArray(out), free: [] });
        return out;
      }) as tfjs.KernelFunc;
    });
    let result: StepResult;
    try {
      result = this.tape(inputs);
    } catch (e) {
      // nothing recorded is kept: the constants' references go, and the next call records again
      for (const c of constants.values()) backend.disposeData(c.dataId);
      throw e;
    } finally {
      configs.forEach((config, k) => (config.kernelFunc = originals[k]!));
    }
    const program: Program = {
      ops,
      value: sourceOf(result.value),
      grads: Object.entries(result.grads).map(([name, g]) => [name, sourceOf(g)]),
      constants: [...constants.values()],
      inputs: inputs.map((x) => ({ shape: [...x.shape], dtype: x.dtype })),
      kernels,
    };
    this.program = program;
    if (refused) {
      this.fallBack(refused);
      return result;
    }
    // liveness: each slot is freed after its last reader; the results' slots stay to the end
    const last = new Map<number, number>();
    ops.forEach((op, i) => {
      for (const s of op.outputs) last.set(s, i);
      for (const [, src] of op.inputs) if (src.kind === 'slot') last.set(src.slot, i);
    });
    for (const src of [program.value, ...program.grads.map(([, s]) => s)]) if (src.kind === 'slot') last.set(src.slot, ops.length);
    for (const [slot, i] of last) if (i < ops.length) ops[i]!.free.push(slot);
    return result;
  }

  private replay(program: Program, inputs: tfjs.Tensor[]): StepResult {
    const tf = this.tf;
    const backend = tf.backend() as unknown as Backend;
    const slots: Array<tfjs.TensorInfo | undefined> = [];
    const resolve = (src: Source): tfjs.TensorInfo => {
      switch (src.kind) {
        case 'slot':
          return slots[src.slot]!;
        case 'variable':
          return src.variable;
        case 'input':
          return inputs[src.index]!;
        case 'constant':
          return src.info;
      }
    };
    try {
      for (const op of program.ops) {
        const ins: tfjs.NamedTensorInfoMap | tfjs.TensorInfo[] = op.listed ? [] : {};
        for (const [name, src, shape, dtype] of op.inputs) (ins as Record<string, tfjs.TensorInfo>)[name] = { dataId: resolve(src).dataId, shape, dtype };
        const out = op.config.kernelFunc({ inputs: ins as tfjs.NamedTensorInfoMap, attrs: op.attrs, backend: backend as never }) as tfjs.TensorInfo | tfjs.TensorInfo[];
        const outs = Array.isArray(out) ? out : [out];
        op.outputs.forEach((s, i) => (slots[s] = outs[i]));
        for (const s of op.free) {
          backend.disposeData(slots[s]!.dataId);
          slots[s] = undefined;
        }
      }
      // each result gets a reference of its own, owned by the tensor made for it
      const tensorOf = (src: Source): tfjs.Tensor => {
        const info = resolve(src);
        backend.incRef(info.dataId);
        return tf.engine().makeTensorFromTensorInfo({ dataId: info.dataId, shape: [...info.shape], dtype: info.dtype });
      };
      return { value: tensorOf(program.value) as tfjs.Scalar, grads: Object.fromEntries(program.grads.map(([name, src]) => [name, tensorOf(src)])) };
    } finally {
      for (const s of slots) if (s) backend.disposeData(s.dataId);
    }
  }
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Where two results differ bit for bit (NaNs equal), or undefined. */
function firstDifference(a: StepResult, b: StepResult): string | undefined {
  const pairs: Array<[string, tfjs.Tensor, tfjs.Tensor | undefined]> = [['the loss', a.value, b.value], ...Object.entries(a.grads).map(([n, g]) => [`the gradient of ${n}`, g, b.grads[n]] as [string, tfjs.Tensor, tfjs.Tensor | undefined])];
  if (Object.keys(a.grads).length !== Object.keys(b.grads).length) return 'the variables with gradients';
  for (const [what, x, y] of pairs) {
    if (!y || !sameShape(x.shape, y.shape)) return what;
    const xs = x.dataSync();
    const ys = y.dataSync();
    for (let i = 0; i < xs.length; i++) {
      if (xs[i] !== ys[i] && !(Number.isNaN(xs[i]) && Number.isNaN(ys[i]))) return `${what} at ${i}: ${xs[i]} against ${ys[i]}`;
    }
  }
  return undefined;
}
