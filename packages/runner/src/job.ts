import { blameOf, isOutOfMemory, isPrimerError } from '@primer-search/core';
import { budgetProgress, encodeWeights, weightsToBase64, environmentFailure, trainingEnvironment, failedResult, trainedSoFar, type EvaluationJob, type JobOutcome, type JobProgress, type RunSettings, type TrainedSoFar } from '@primer-search/study';
import { existsSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { readCheckpoint, runExperiment, selectBackend, type TrainCheckpoint } from '@primer-search/trainer-gpu';
import { programBehaviour } from './behaviour.js';
import { importPlugins } from './plugins.js';

const loaded = new Set<string>();

/** The largest model whose weights a worker sends back for --keep-weights (64 MB of float32; base64 and a queue's JSON column must hold them). */
export const MAX_KEPT_PARAMETERS = 16_000_000;

/** wasm's heap running out aborts the module: "RuntimeError: Aborted()" (or "Aborted(OOM)"). */
/** Why an exception stopped a candidate, as a failure reason (a program failure's category first). */
export function reasonOf(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  if (isOutOfMemory(e)) return message.startsWith('out of memory') ? message : `out of memory: ${message}`;
  if (isPrimerError(e)) return `invalid: ${message}`;
  return `error: ${message}`;
}

/** An exception as what the job ends with: the program's failure, or the environment's. */
export function outcomeOfError(job: Pick<EvaluationJob, 'candidate' | 'hash' | 'hurdles'>, e: unknown, trained?: TrainedSoFar): JobOutcome {
  const message = e instanceof Error ? e.message : String(e);
  if (!isOutOfMemory(e) && blameOf(e) === 'environment') return environmentFailure(job, message);
  return failedResult(job, reasonOf(e), trained);
}

/**
 * Trains one candidate under its budget, stopping it at the first hurdle whose threshold
 * its validation perplexity does not beat. Never throws: a failure is a result, the
 * program's or the environment's. A job with a checkpoint folder continues from the checkpoint
 * there when it is this run's (`EvaluationJob.checkpoint`). `stop`: ends the training between
 * two steps (a job with a checkpoint saves it first); what the job then returns is no result of
 * the program's, and the caller does not report it.
 */
export async function evaluateCandidate(job: EvaluationJob, onProgress?: (p: JobProgress) => void, stop?: AbortSignal): Promise<JobOutcome> {
  try {
    await importPlugins(
      job.plugins.filter((p) => !loaded.has(p)),
      (p, why) => {
        throw new Error(`cannot load the plugin ${p}: ${why}`);
      },
    );
    for (const p of job.plugins) loaded.add(p);
  } catch (e) {
    return environmentFailure(job, (e as Error).message);
  }
  const atHurdles: Array<number | null> = job.hurdles.map(() => null);
  const abort = new AbortController();
  if (stop?.aborted) abort.abort();
  stop?.addEventListener('abort', () => abort.abort(), { once: true });
  let stoppedAt: number | undefined;
  const settings: RunSettings = { ...job.settings, train: { ...job.settings.train, checkpoints: job.checkpoints ?? job.hurdles.map((h) => h.fraction) } };
  // what an exception in training leaves recorded: the last progress (which names the backend)
  let last: JobProgress | undefined;
  try {
    const backend = await selectBackend(settings.backend);
    const behaviour = job.behaviours ? await programBehaviour(backend.tf, job.dna, settings) : null;
    if (behaviour !== null && job.behaviours!.includes(behaviour)) return { candidate: job.candidate, hash: job.hash, status: 'equivalent', behaviour };
    let weights: string | undefined;
    // a checkpoint the job's folder holds: what an earlier try of this run got to (a stopped process, a lost machine)
    // (not for a search's candidates: their hurdles' perplexities would not be seen again)
    const checkpoint = job.checkpoint && job.hurdles.length === 0 ? { path: job.checkpoint.path, everySeconds: job.checkpoint.everySeconds ?? 120 } : undefined;
    let resume: TrainCheckpoint | undefined;
    if (checkpoint && existsSync(checkpoint.path)) {
      try {
        resume = readCheckpoint(checkpoint.path);
      } catch {
        resume = undefined; // unreadable (damaged, another format): trained from the start, written over
      }
      // the same run has the same budget (a training checkpoint's own check leaves it out: primer train --resume may extend a run)
      if (resume && !isDeepStrictEqual(JSON.parse(JSON.stringify(resume.budget)), JSON.parse(JSON.stringify(settings.budget)))) resume = undefined;
    }
    const train = (from: TrainCheckpoint | undefined) => runExperiment(job.dna, settings, {
      checkpoint,
      resume: from,
      backend,
      signal: abort.signal,
      plugins: job.plugins,
      // the weights of a completed training, for the study to keep (--keep-weights)
      // (never the program's failure: weights too large to send, or any error making them, leave the result without them)
      onTrained: job.keepWeights
        ? async (model, _data, r) => {
            if (r.status !== 'completed' || model.estimate.parameters > MAX_KEPT_PARAMETERS) return;
            try {
              // read asynchronously: a GPU backend has no synchronous read in Node
              const read = await Promise.all([...model.namedVariables].map(async ([name, v]) => ({ name, shape: v.shape, values: (await v.data()) as Float32Array })));
              weights = weightsToBase64(encodeWeights(read));
            } catch {
              weights = undefined;
            }
          }
        : undefined,
      onProgress: (e) => {
        last = { candidate: job.candidate, progress: e.progress, step: e.step, trainLoss: e.trainLoss, tokens: e.tokens, seconds: e.seconds, backend: backend.choice };
        onProgress?.(last);
      },
      onEvaluation: (e) => {
        const progress = budgetProgress(settings.budget, { seconds: e.seconds, steps: e.step, tokens: e.tokens, flops: e.flops });
        job.hurdles.forEach((h, k) => {
          if (atHurdles[k] !== null || h.fraction > progress + 1e-9) return;
          atHurdles[k] = e.perplexity;
          if (progress < 1 && stoppedAt === undefined && h.threshold !== null && !(e.perplexity <= h.threshold)) {
            stoppedAt = k;
            abort.abort();
          }
        });
      },
    });
    let record: Awaited<ReturnType<typeof runExperiment>>;
    let resumedAt = resume?.step;
    try {
      record = await train(resume);
    } catch (e) {
      // a checkpoint of another run (other settings, another model) is not this run's: start afresh
      if (!resume || !(isPrimerError(e) && e.code === 'BAD_CHECKPOINT')) throw e;
      resumedAt = undefined;
      record = await train(undefined);
    }
    const r = record.result;
    const base = {
      candidate: job.candidate,
      hash: job.hash,
      curve: r.evaluations.map((e) => ({
        step: e.step,
        tokens: e.tokens,
        seconds: e.seconds,
        perplexity: e.perplexity,
        ...(e.flops !== undefined ? { flops: e.flops } : {}),
        ...(e.inContext !== undefined ? { inContext: e.inContext } : {}),
        ...(e.recall !== undefined ? { recall: e.recall } : {}),
      })),
      atHurdles,
      steps: r.steps,
      tokens: r.tokens,
      trainSeconds: r.trainSeconds,
      backend: record.backend.choice,
      environment: trainingEnvironment(record.backend.choice, record.backend.tfjs, record.backend.products),
      parameters: r.parameters,
      vocabSize: record.data.vocabSize,
      behaviour,
    };
    if (r.status === 'completed' && r.final) {
      return { ...base, status: 'completed', fitness: r.final.perplexity, hurdle: null, reason: null, ...(weights ? { weights } : {}), ...(resumedAt !== undefined ? { resumedAt } : {}) };
    }
    if (r.status === 'stopped' && stoppedAt !== undefined) {
      return { ...base, status: 'hurdle', fitness: atHurdles[stoppedAt]!, hurdle: stoppedAt, reason: null };
    }
    if (r.status === 'diverged') {
      return { ...base, status: 'failed', fitness: null, hurdle: null, reason: `diverged: the ${r.divergence!.what} stopped being finite at step ${r.divergence!.step}` };
    }
    return { ...base, status: 'failed', fitness: null, hurdle: null, reason: `error: training ended as ${r.status}` };
  } catch (e) {
    return outcomeOfError(job, e, trainedSoFar(last));
  }
}
