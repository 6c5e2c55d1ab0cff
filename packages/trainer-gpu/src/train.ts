import type * as tfjs from '@tensorflow/tfjs';
import type { LanguageModel } from '@primer-search/compiler';
import type { Batch, BatchSampler } from '@primer-search/datasets';
import { PrimerError } from '@primer-search/core';
import { writeCheckpoint, type TrainCheckpoint } from './checkpoint.js';
import type { Evaluation } from './evaluation.js';
import type { DataParallel } from './data-parallel.js';
import { DEFAULT_TRAIN_CONFIG, budgetProgress, type Budget, type TrainConfig } from '@primer-search/study';
import { CompiledStep, type CompiledStepStatus } from './compiled-step.js';
import { createOptimizer, globalNorm, learningRate, type Slot } from './optimizers.js';


export type { Evaluation } from './evaluation.js';

export interface ProgressEvent {
  step: number;
  tokens: number;
  seconds: number;
  /** 0..1 of the budget. */
  progress: number;
  trainLoss: number;
  learningRate: number;
  tokensPerSecond: number;
}

export interface TrainResult {
  /** `stopped`: interrupted by the caller's signal (a checkpoint, if asked for, holds the run). */
  status: 'completed' | 'diverged' | 'stopped';
  /** For a diverged run: what went non-finite, and when. */
  divergence?: { step: number; what: 'training loss' | 'gradient norm' | 'validation loss' };
  budget: Budget;
  steps: number;
  tokens: number;
  /** Seconds of training steps (the time budget counts these). */
  trainSeconds: number;
  /** Seconds spent evaluating. */
  evalSeconds: number;
  tokensPerSecond: number;
  parameters: number;
  trainingFlopsPerToken: number;
  /** Validation at each checkpoint and at the end (the last entry). */
  evaluations: Evaluation[];
  final?: Evaluation;
  /** Training loss after every step. */
  curve: Array<{ step: number; tokens: number; seconds: number; loss: number }>;
  /**
   * How the steps ran: `replaying` when the compiled step took over (see CompiledStep), else
   * `tape` with the reason (PRIMER_COMPILED_STEP=off among them).
   */
  compiledStep?: CompiledStepStatus;
}

/** The namespace `model` was compiled with, typed as this package's tfjs (the trainer imports none itself). */
const tfOf = (model: LanguageModel) => model.tf as unknown as typeof tfjs;

/** A batch as int32 `[batch, seq]` inputs and targets (call inside tf.tidy). */
function batchTensors(tf: typeof tfjs, b: Batch): { x: tfjs.Tensor2D; y: tfjs.Tensor2D } {
  return { x: tf.tensor2d(b.tokens, [b.batch, b.seqLen], 'int32'), y: tf.tensor2d(b.targets, [b.batch, b.seqLen], 'int32') };
}

/**
 * The in-context score of a validation pass (Olsson et al. 2022): the mean loss over the first
 * eighth of a window's positions minus the mean over its last eighth, in nats. A model that uses
 * its context predicts later tokens better, and scores higher; a model that sees only the current
 * token scores about 0. NaN for windows shorter than 2 positions or a non-finite loss.
 */
export function inContextScore(positionLosses: ArrayLike<number>): number {
  const n = positionLosses.length;
  if (n < 2) return NaN;
  const k = Math.max(1, Math.floor(n / 8));
  let first = 0;
  let last = 0;
  for (let i = 0; i < k; i++) {
    first += positionLosses[i]!;
    last += positionLosses[n - k + i]!;
  }
  return (first - last) / k;
}

/**
 * Mean loss of `model` over fixed batches, token-weighted, and its in-context score
 * (`inContextScore` of the per-position losses over every batch), from one forward pass per batch;
 * with `queryPositions` (a synthetic task's), also the share of queries whose answer is the most
 * likely next token (recall), from the same pass.
 */
export async function evaluate(model: LanguageModel, batches: Batch[], queryPositions?: number[]): Promise<{ loss: number; inContext: number; recall?: number }> {
  const tf = tfOf(model);
  let total = 0;
  let count = 0;
  let right = 0;
  let asked = 0;
  let positions: Float64Array | undefined;
  let windows = 0;
  const recall = Boolean(queryPositions?.length);
  for (const b of batches) {
    const r = tf.tidy(() => {
      const { x, y } = batchTensors(tf, b);
      const out = model.evalLosses(x as never, y as never, { guesses: recall }) as unknown as { loss: tfjs.Tensor; positions: tfjs.Tensor; guesses?: tfjs.Tensor };
      return [out.loss, out.positions, ...(out.guesses ? [out.guesses] : [])];
    });
    // read asynchronously: a GPU backend has no synchronous read in Node
    const [loss, perPosition, guesses] = await Promise.all(r.map((t) => t.data())).finally(() => tf.dispose(r)) as [Float32Array, Float32Array, Int32Array?];
    total += loss[0]! * b.batch * b.seqLen;
    count += b.batch * b.seqLen;
    positions ??= new Float64Array(perPosition.length);
    for (let i = 0; i < positions.length; i++) positions[i]! += perPosition[i]! * b.batch;
    windows += b.batch;
    if (guesses) {
      // recall: the most likely next token is the query's answer
      for (let w = 0; w < b.batch; w++) {
        for (const p of queryPositions!) {
          if (p >= b.seqLen) continue;
          asked++;
          if (guesses[w * b.seqLen + p] === b.targets[w * b.seqLen + p]) right++;
        }
      }
    }
  }
  const mean = positions ? positions.map((x) => x / windows) : new Float64Array(0);
  return { loss: total / count, inContext: inContextScore(mean), ...(asked ? { recall: right / asked } : {}) };
}

const show = (v: unknown) => (v === undefined ? 'unset' : JSON.stringify(v));

/**
 * Refuses to resume `c` unless it is the same run: the same context (model, data), training
 * settings, optimizer, weight names and shapes. Names every field that differs.
 */
function checkResumable(
  c: TrainCheckpoint,
  now: { named: Array<[string, tfjs.Variable]>; config: TrainConfig; optimizer: string; context?: Record<string, unknown> },
): void {
  const differ = (a: Record<string, unknown> | undefined, b: Record<string, unknown> | undefined) =>
    Object.keys({ ...a, ...b })
      .filter((k) => JSON.stringify(a?.[k]) !== JSON.stringify(b?.[k]))
      .map((k) => `${k} ${show(a?.[k])} (now ${show(b?.[k])})`);
  const fields = [
    ...differ(c.context, now.context),
    ...differ({ optimizer: c.optimizer.name }, { optimizer: now.optimizer }),
    ...differ(c.config as unknown as Record<string, unknown>, now.config as unknown as Record<string, unknown>),
  ];
  if (fields.length > 0) throw new PrimerError('BAD_CHECKPOINT', `the checkpoint was made with other settings: ${fields.join(', ')}`);
  const names = Object.keys(c.weights).sort();
  const mine = now.named.map(([n]) => n).sort();
  if (names.join('\n') !== mine.join('\n')) {
    throw new PrimerError('BAD_CHECKPOINT', 'the checkpoint holds the weights of another model (its parameter names differ)');
  }
  for (const [name, v] of now.named) {
    const w = c.weights[name]!;
    if (w.shape.join('x') !== v.shape.join('x')) {
      throw new PrimerError('BAD_CHECKPOINT', `the checkpoint's ${name} is ${w.shape.join('x')}, the model's ${v.shape.join('x')}`);
    }
  }
}

/**
 * Trains `model` until the budget is spent or the loss stops being finite, evaluating on the
 * fixed validation batches at each checkpoint and at the end. Leaves no tensors behind but
 * the model's own variables.
 *
 * Ownership of tensors given to variables, the rule every package follows: `tf.variable(t)` and
 * `v.assign(t)` take a reference of their own to `t`'s data and leave `t` to its maker, so `t`
 * is made inside `tf.tidy` (or disposed right after); the variable is disposed by whoever owns
 * the model or the optimizer (`dispose()`). A worker process trains candidate after candidate,
 * so a tensor left behind here is memory lost for the rest of a study.
 */
export async function trainModel(args: {
  model: LanguageModel;
  sampler: BatchSampler;
  evaluation: Batch[];
  /** A synthetic task's query positions in a window (mqar): where each evaluation measures recall. */
  queryPositions?: number[];
  budget: Budget;
  config?: Partial<TrainConfig>;
  onProgress?: (e: ProgressEvent) => void;
  onEvaluation?: (e: Evaluation) => void;
  /** Save the run here (atomically) every `everySeconds` of training, at each evaluation and at the end. */
  checkpoint?: { path: string; everySeconds?: number };
  /** Continue a run from its checkpoint (same model, data and settings). */
  resume?: TrainCheckpoint;
  /** Stop between steps (saving a checkpoint if one is configured). */
  signal?: AbortSignal;
  /** Recorded in checkpoints; resuming with a different context is refused, naming the fields. */
  context?: Record<string, unknown>;
  /** Split each step's gradients across replica threads (one thread's loss and gradients up to float rounding: the rows' gradients are summed in another order). */
  parallel?: DataParallel;
}): Promise<TrainResult> {
  const { model, sampler, evaluation, budget } = args;
  // the training loop runs on the namespace the model was compiled with, as the compiler does
  const tf = tfOf(model);
  const config: TrainConfig = { ...DEFAULT_TRAIN_CONFIG, ...args.config };
  const optimizer = createOptimizer(config.optimizer, model.tf);
  const variables = model.variables as unknown as tfjs.Variable[];
  const checkpoints = [...config.checkpoints].filter((f) => f > 0 && f < 1).sort((a, b) => a - b);
  const result: TrainResult = {
    status: 'completed',
    budget,
    steps: 0,
    tokens: 0,
    trainSeconds: 0,
    evalSeconds: 0,
    tokensPerSecond: 0,
    parameters: model.estimate.parameters,
    trainingFlopsPerToken: model.estimate.trainingFlopsPerToken,
    evaluations: [],
    curve: [],
  };
  const flopsPerToken = model.estimate.trainingFlopsPerToken;
  const used = () => ({ seconds: result.trainSeconds, steps: result.steps, tokens: result.tokens, flops: result.tokens * flopsPerToken });
  const named = [...model.namedVariables] as Array<[string, tfjs.Variable]>;
  // tfjs variable name -> the model's stable name, for the optimizer's saved state
  const stableNames = new Map(named.map(([n, v]) => [v.name, n]));

  if (args.resume) {
    const c = args.resume;
    checkResumable(c, { named, config, optimizer: optimizer.name, context: args.context });
    // every check passed: only now is anything overwritten
    for (const [name, v] of named) tf.tidy(() => v.assign(tf.tensor(c.weights[name]!.values, c.weights[name]!.shape)));
    optimizer.loadSlots(stableNames, c.optimizer.slots);
    sampler.restore(c.sampler);
    Object.assign(result, { steps: c.step, tokens: c.tokens, trainSeconds: c.trainSeconds, evalSeconds: c.evalSeconds });
    result.evaluations = [...c.evaluations];
    result.curve = [...c.curve];
  }

  let lastSaved = result.trainSeconds;
  const save = async () => {
    if (!args.checkpoint) return;
    writeCheckpoint(args.checkpoint.path, {
      format: 'primer-train-checkpoint',
      version: 2,
      budget,
      config,
      step: result.steps,
      tokens: result.tokens,
      trainSeconds: result.trainSeconds,
      evalSeconds: result.evalSeconds,
      evaluations: result.evaluations,
      curve: result.curve,
      sampler: sampler.state(),
      weights: Object.fromEntries(await Promise.all(named.map(async ([n, v]): Promise<[string, Slot]> => [n, { values: (await v.data()) as Float32Array, shape: [...v.shape] }]))),
      optimizer: { name: optimizer.name, slots: await optimizer.saveSlots(stableNames) },
      context: args.context,
    });
    lastSaved = result.trainSeconds;
  };

  const runEvaluation = async (): Promise<boolean> => {
    const t0 = performance.now();
    const { loss, inContext, recall } = await evaluate(model, evaluation, args.queryPositions);
    result.evalSeconds += (performance.now() - t0) / 1000;
    const e: Evaluation = {
      step: result.steps,
      tokens: result.tokens,
      seconds: result.trainSeconds,
      flops: result.tokens * flopsPerToken,
      loss,
      perplexity: Math.exp(loss),
      ...(Number.isFinite(inContext) ? { inContext } : {}),
      ...(recall !== undefined ? { recall } : {}),
    };
    result.evaluations.push(e);
    args.onEvaluation?.(e);
    if (!Number.isFinite(loss)) {
      result.status = 'diverged';
      result.divergence = { step: result.steps, what: 'validation loss' };
      return false;
    }
    return true;
  };

  // this thread's share of a data-parallel step is compiled too (its replicas compile theirs)
  const compiled = new CompiledStep(tf, (x, y) => model.loss(x as never, y as never) as unknown as tfjs.Scalar, variables);
  try {
    while (budgetProgress(budget, used()) < 1) {
      if (args.signal?.aborted) {
        result.status = 'stopped';
        await save();
        break;
      }
      const before = budgetProgress(budget, used());
      const batch = sampler.next();
      const lr = learningRate(result.steps, config.learningRate, config.warmupSteps);
      optimizer.setLearningRate(lr);
      const t0 = performance.now();
      const local = (x: tfjs.Tensor2D, y: tfjs.Tensor2D) => compiled.run(x, y);
      const computed = args.parallel
        ? await args.parallel.gradients(batch, variables, local)
        : tf.tidy(() => {
            const { x, y } = batchTensors(tf, batch);
            return local(x, y);
          });
      const { value, grads } = computed;
      let loss: number;
      let norm: number;
      try {
        const normTensor = tf.tidy(() => globalNorm(tf as never, Object.values(grads)) as unknown as tfjs.Tensor);
        // read asynchronously: a GPU backend has no synchronous read in Node (on wasm it is as quick)
        [loss, norm] = await Promise.all([value.data(), normTensor.data()])
          .then(([l, n]) => [l[0]!, n[0]!])
          .finally(() => normTensor.dispose());
        if (Number.isFinite(loss) && Number.isFinite(norm)) {
          // the clipping's factor goes into the update (one pass in the fused Adam)
          tf.tidy(() => optimizer.applyGradients(grads, config.clipNorm > 0 && norm > config.clipNorm ? config.clipNorm / norm : 1));
        }
      } finally {
        tf.dispose([value, ...Object.values(grads)]);
      }
      result.trainSeconds += (performance.now() - t0) / 1000;
      if (!Number.isFinite(loss) || !Number.isFinite(norm)) {
        result.status = 'diverged';
        result.divergence = { step: result.steps, what: Number.isFinite(loss) ? 'gradient norm' : 'training loss' };
        break;
      }
      result.steps++;
      result.tokens += batch.batch * batch.seqLen;
      result.curve.push({ step: result.steps, tokens: result.tokens, seconds: result.trainSeconds, loss });
      const progress = budgetProgress(budget, used());
      args.onProgress?.({
        step: result.steps,
        tokens: result.tokens,
        seconds: result.trainSeconds,
        progress,
        trainLoss: loss,
        learningRate: lr,
        tokensPerSecond: result.tokens / result.trainSeconds,
      });
      if (progress < 1 && checkpoints.some((f) => before < f && progress >= f)) {
        if (!(await runEvaluation())) break;
        await save();
      } else if (args.checkpoint && result.trainSeconds - lastSaved >= (args.checkpoint.everySeconds ?? 60)) {
        await save();
      }
      // Let timers and signals run between steps.
      if (result.steps % 10 === 0) await new Promise((r) => setImmediate(r));
    }
    if (result.status === 'completed' && budgetProgress(budget, used()) >= 1 && result.evaluations.at(-1)?.step !== result.steps) {
      await runEvaluation();
    }
    if (result.status === 'completed') await save();
  } finally {
    optimizer.dispose();
    result.compiledStep = compiled.status;
    compiled.dispose();
  }
  result.tokensPerSecond = result.trainSeconds > 0 ? result.tokens / result.trainSeconds : 0;
  const last = result.evaluations[result.evaluations.length - 1];
  if (result.status === 'completed' && last) result.final = last;
  return result;
}
