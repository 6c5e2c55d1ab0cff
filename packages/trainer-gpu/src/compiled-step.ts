// A compiled training step: the forward and backward kernel sequence of one step, recorded once
// (shapes are fixed for a run) and replayed on later steps without tfjs's tape, scopes,
// gradient functions and per-op bookkeeping. Each intermediate is freed right after its last
// use. Anything it cannot replay falls back to the tape, with the reason kept.
import type * as tfjs from '@tensorflow/tfjs';

type Tf = typeof tfjs;

/** The backend calls a replay makes (the wasm backend has them). */
interface Backend {
  incRef(dataId: tfjs.DataId): void;
  disposeData(dataId: tfjs.DataId, force?: boolean): boolean;
}

/** Where a recorded kernel's input comes from at replay (`absent`: an optional input not given, e.g. a bias). */
type Source =
  | { kind: 'slot'; slot: number }
  | { kind: 'variable'; variable: tfjs.Variable }
  | { kind: 'input'; index: number }
  | { kind: 'constant'; tensor: tfjs.Tensor }
  | { kind: 'absent' };

/** A result of the step: where its data comes from, and its own shape and dtype (a slot sharing its data may have another shape). */
interface Result {
  source: Source;
  shape: number[];
  dtype: tfjs.DataType;
}

interface Op {
  name: string;
  /** The kernel function recorded (the registry's config is checked against `Program.kernels` before a replay). */
  kernel: tfjs.KernelFunc;
  inputs: Array<[string, Source, number[], tfjs.DataType]>;
  attrs: tfjs.NamedAttrMap;
  /** The inputs were given as an array (Concat, AddN), not by name. */
  listed: boolean;
  /** The slot of each output, in order, and the shape each had when recorded (checked at replay). */
  outputs: number[];
  shapes: number[][];
  /** Slots to free right after this kernel (their last reader, or their producer when nothing reads them). */
  free: number[];
}

interface Program {
  ops: Op[];
  /** The loss, then each gradient (by variable name). */
  value: Result;
  grads: Array<[string, Result]>;
  /** Constants kept alive by the program (kept engine tensors of their own), disposed by dispose. */
  constants: tfjs.Tensor[];
  /** Shapes and dtypes the inputs were recorded with, and which input each one's data was (the same tensor given twice is recorded as one). */
  inputs: Array<{ shape: number[]; dtype: tfjs.DataType }>;
  aliases: number[];
  /** Kernels whose registration a replay checks first (a re-registered kernel means record again). */
  kernels: Map<string, tfjs.KernelConfig>;
  /** The backend it was recorded on. */
  backend: string;
}

/**
 * Kernels whose result is not a function of their inputs and attributes: a step using one is
 * not replayed. (tfjs draws randomUniform, randomNormal and the like in JavaScript, outside any
 * kernel: their values are recorded as constants, and only the check on the second step, whose
 * draws differ, catches them.)
 */
const STATEFUL = new Set(['Multinomial', 'RandomUniform', 'RandomNormal', 'RandomStandardNormal', 'RandomGamma', 'TruncatedNormal']);

/**
 * The backends whose kernels return plain tensor infos that the replay owns: wasm. (tfjs-node's
 * return engine tensors, and so do some of the cpu backend's, e.g. Abs: a recording that meets
 * one falls back to the tape.)
 */
const REPLAYABLE = new Set(['wasm']);

/** Which input each input's data is (its own index, or the first input with the same data). */
const aliasesOf = (inputs: tfjs.Tensor[]) => inputs.map((x, i) => inputs.findIndex((y, j) => j <= i && y.dataId === x.dataId));

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
 * bit for bit, and from the third on only the recording runs. Stays on the tape (`status` says
 * why) with PRIMER_COMPILED_STEP=off (the escape hatch and the A/B switch, read when it is made);
 * falls back to it for good on a backend other than wasm, a kernel drawing random numbers, a
 * result that differs, a replay that fails or whose kernels give other shapes, or a kernel
 * registered anew since; for one call when the inputs' shapes, dtypes or aliasing differ from
 * the recorded ones.
 *
 * What it cannot know: a value the loss reads from JavaScript, or from a tfjs variable not in
 * `variables` (a non-trainable one), that first changes after the second step is replayed as
 * recorded; and a fused kernel registered after the recording (one that was not there) is not
 * picked up: the recording keeps running the composite it recorded (the same results, slower).
 */
export class CompiledStep {
  private program: Program | undefined;
  private state: CompiledStepStatus = { state: 'recording' };

  constructor(
    private readonly tf: Tf,
    private readonly loss: (...inputs: tfjs.Tensor[]) => tfjs.Scalar,
    private readonly variables: tfjs.Variable[],
  ) {
    if (process.env.PRIMER_COMPILED_STEP === 'off') this.state = { state: 'tape', reason: 'turned off (PRIMER_COMPILED_STEP=off)' };
    else if (!REPLAYABLE.has(tf.getBackend())) this.state = { state: 'tape', reason: `steps are replayed on wasm only, not on ${tf.getBackend()}` };
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
    const aliases = aliasesOf(inputs);
    if (
      inputs.length !== program.inputs.length ||
      !inputs.every((x, i) => x.dtype === program.inputs[i]!.dtype && this.tf.util.arraysEqual(x.shape, program.inputs[i]!.shape) && aliases[i] === program.aliases[i])
    ) {
      return this.tape(inputs);
    }
    if (this.tf.getBackend() !== program.backend) {
      this.fallBack(`the backend changed from ${program.backend} to ${this.tf.getBackend()} after the step was recorded`);
      return this.tape(inputs);
    }
    const changed = [...program.kernels].find(([name, config]) => this.tf.getKernel(name, this.tf.getBackend()) !== config);
    if (changed) {
      this.fallBack(`the kernel ${changed[0]} was registered anew after the step was recorded`);
      return this.tape(inputs);
    }
    if (this.state.state === 'verifying') {
      const taped = this.tape(inputs);
      let replayed: StepResult;
      try {
        replayed = this.replay(program, inputs);
      } catch (e) {
        this.fallBack(`the replay failed: ${(e as Error).message}`);
        return taped;
      }
      const differs = firstDifference(this.tf, taped, replayed);
      this.tf.dispose([replayed.value, ...Object.values(replayed.grads)]);
      if (differs) this.fallBack(`the replayed step differs from the taped one (${differs})`);
      else this.state = { state: 'replaying' };
      return taped;
    }
    try {
      return this.replay(program, inputs);
    } catch (e) {
      this.fallBack(`the replay failed: ${(e as Error).message}`);
      return this.tape(inputs);
    }
  }

  /** Frees what the recording keeps (its constants); later calls record again. */
  dispose(): void {
    if (this.program) this.tf.dispose(this.program.constants);
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
    /** The slot that last produced each data id, and how many slots there are. */
    const produced = new Map<tfjs.DataId, number>();
    let slotCount = 0;
    const variableOf = new Map(this.variables.map((v) => [v.dataId, v]));
    // the same tensor given twice reads as its first position
    const inputOf = new Map([...inputs.entries()].reverse().map(([i, x]) => [x.dataId, i]));
    const constants = new Map<tfjs.DataId, tfjs.Tensor>();
    const kernels = new Map<string, tfjs.KernelConfig>();
    let depth = 0;
    let refused: string | undefined;
    const sourceOf = (info: tfjs.TensorInfo | undefined | null): Source => {
      if (info == null) return { kind: 'absent' };
      const slot = produced.get(info.dataId);
      if (slot !== undefined) return { kind: 'slot', slot };
      const v = variableOf.get(info.dataId);
      if (v) return { kind: 'variable', variable: v };
      const i = inputOf.get(info.dataId);
      if (i !== undefined) return { kind: 'input', index: i };
      let c = constants.get(info.dataId);
      if (!c) {
        // made outside any kernel (a scalar of an op, the backward pass's ones): kept as a tensor of
        // our own, so the engine's books stay right when it goes
        backend.incRef(info.dataId);
        c = tf.keep(tf.engine().makeTensorFromTensorInfo({ dataId: info.dataId, shape: [...info.shape], dtype: info.dtype }));
        constants.set(info.dataId, c);
      }
      return { kind: 'constant', tensor: c };
    };
    const resultOf = (t: tfjs.Tensor): Result => ({ source: sourceOf(t), shape: [...t.shape], dtype: t.dtype });
    configs.forEach((config, k) => {
      const original = originals[k]!;
      config.kernelFunc = ((args: { inputs: tfjs.NamedTensorInfoMap; attrs?: tfjs.NamedAttrMap; backend: unknown }) => {
        if (depth > 0) return original(args as never);
        if (STATEFUL.has(config.kernelName)) refused ??= `the step runs ${config.kernelName}, whose result is not a function of its inputs`;
        const ins = Object.entries(args.inputs).map(([name, t]) => [name, sourceOf(t), t ? [...t.shape] : [], t ? t.dtype : 'float32'] as Op['inputs'][number]);
        depth++;
        let out: tfjs.TensorInfo | tfjs.TensorInfo[];
        try {
          out = original(args as never) as tfjs.TensorInfo | tfjs.TensorInfo[];
        } finally {
          depth--;
        }
        const outs = Array.isArray(out) ? out : [out];
        // a kernel returning engine tensors (tfjs-node's) is not ours to free
        if (outs.some((o) => (o as { rank?: unknown }).rank != null)) refused ??= `${config.kernelName} returns tensors the engine owns`;
        const slots = outs.map((o) => {
          const slot = slotCount++;
          produced.set(o.dataId, slot);
          return slot;
        });
        kernels.set(config.kernelName, config);
        ops.push({ name: config.kernelName, kernel: original, inputs: ins, attrs: { ...(args.attrs ?? {}) }, listed: Array.isArray(args.inputs), outputs: slots, shapes: outs.map((o) => [...o.shape]), free: [] });
        return out;
      }) as tfjs.KernelFunc;
    });
    let result: StepResult;
    try {
      result = this.tape(inputs);
    } catch (e) {
      // nothing recorded is kept: the constants go, and the next call records again
      tf.dispose([...constants.values()]);
      throw e;
    } finally {
      configs.forEach((config, k) => (config.kernelFunc = originals[k]!));
    }
    const program: Program = {
      ops,
      value: resultOf(result.value),
      grads: Object.entries(result.grads).map(([name, g]) => [name, resultOf(g)]),
      constants: [...constants.values()],
      inputs: inputs.map((x) => ({ shape: [...x.shape], dtype: x.dtype })),
      aliases: aliasesOf(inputs),
      kernels,
      backend: backendName,
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
    for (const { source } of [program.value, ...program.grads.map(([, r]) => r)]) if (source.kind === 'slot') last.set(source.slot, ops.length);
    for (const [slot, i] of last) if (i < ops.length) ops[i]!.free.push(slot);
    return result;
  }

  private replay(program: Program, inputs: tfjs.Tensor[]): StepResult {
    const tf = this.tf;
    const backend = tf.backend() as unknown as Backend;
    const slots: Array<tfjs.TensorInfo | undefined> = [];
    const resolve = (src: Source): tfjs.TensorInfo | undefined => {
      switch (src.kind) {
        case 'slot':
          return slots[src.slot]!;
        case 'variable':
          return src.variable;
        case 'input':
          return inputs[src.index]!;
        case 'constant':
          return src.tensor;
        case 'absent':
          return undefined;
      }
    };
    try {
      for (const op of program.ops) {
        const ins: tfjs.NamedTensorInfoMap | tfjs.TensorInfo[] = op.listed ? [] : {};
        for (const [name, src, shape, dtype] of op.inputs) {
          const info = resolve(src);
          (ins as Record<string, tfjs.TensorInfo | undefined>)[name] = info && { dataId: info.dataId, shape, dtype };
        }
        const out = op.kernel({ inputs: ins as tfjs.NamedTensorInfoMap, attrs: op.attrs, backend: backend as never }) as tfjs.TensorInfo | tfjs.TensorInfo[];
        const outs = Array.isArray(out) ? out : [out];
        if (outs.length !== op.outputs.length) {
          for (const o of outs) backend.disposeData(o.dataId);
          throw new Error(`${op.name} gave ${outs.length} outputs, not the ${op.outputs.length} recorded`);
        }
        op.outputs.forEach((s, i) => (slots[s] = outs[i]));
        // shapes are fixed for a recording: a kernel whose output shape follows its data cannot be replayed
        const other = outs.findIndex((o, i) => !tf.util.arraysEqual(o.shape, op.shapes[i]!));
        if (other >= 0) throw new Error(`${op.name} gave an output of another shape than when recorded`);
        for (const s of op.free) {
          backend.disposeData(slots[s]!.dataId);
          slots[s] = undefined;
        }
      }
      // each result gets a reference of its own, owned by the tensor made for it
      const tensorOf = (r: Result): tfjs.Tensor => {
        const info = resolve(r.source)!;
        backend.incRef(info.dataId);
        return tf.engine().makeTensorFromTensorInfo({ dataId: info.dataId, shape: [...r.shape], dtype: r.dtype });
      };
      return { value: tensorOf(program.value) as tfjs.Scalar, grads: Object.fromEntries(program.grads.map(([name, src]) => [name, tensorOf(src)])) };
    } finally {
      // what is left: the results' slots, or everything alive when a kernel threw
      for (const s of slots) if (s) backend.disposeData(s.dataId);
    }
  }
}

/** Where two results differ bit for bit (their float32 bits: -0 is not 0, a NaN is its payload), or undefined. */
function firstDifference(tf: Tf, a: StepResult, b: StepResult): string | undefined {
  const pairs: Array<[string, tfjs.Tensor, tfjs.Tensor | undefined]> = [['the loss', a.value, b.value], ...Object.entries(a.grads).map(([n, g]) => [`the gradient of ${n}`, g, b.grads[n]] as [string, tfjs.Tensor, tfjs.Tensor | undefined])];
  if (Object.keys(a.grads).length !== Object.keys(b.grads).length) return 'the variables with gradients';
  for (const [what, x, y] of pairs) {
    if (!y || !tf.util.arraysEqual(x.shape, y.shape)) return what;
    if (x.dtype !== y.dtype) return what;
    const xs = x.dataSync();
    const ys = y.dataSync();
    const bits = (a: tfjs.TypedArray) => (a.BYTES_PER_ELEMENT === 4 ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a);
    const [xb, yb] = [bits(xs), bits(ys)];
    for (let i = 0; i < xb.length; i++) {
      if (xb[i] !== yb[i]) return `${what} at ${i}: ${xs[i]} against ${ys[i]}`;
    }
  }
  return undefined;
}
