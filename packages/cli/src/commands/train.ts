import { checkBackend, checkName, checkPath, dModel as dModelFlag, heads as headsFlag, number } from '../flags.js';
import { existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { availableParallelism } from 'node:os';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { baselines } from '@primer-search/baselines';
import { corpora, prepareData, tokenizers, type DataSettings } from '@primer-search/datasets';
import { BUILTIN_BACKENDS, DEFAULT_RUN_SETTINGS, describeBackend, DEFAULT_TRAIN_CONFIG, formatBudget, parseBudget, seedStatistics, type BackendChoice, type RunSettings } from '@primer-search/study';
import type { RunRecord } from '@primer-search/trainer-gpu';
import { loadTrainer } from '../trainer.js';
import { exportLanguageModel } from '../export-model.js';
import { duration, fmt } from '../format.js';
import { UsageError, type CliIo } from '../io.js';
import { trainingProgress } from '../progress.js';
import { integer, loadDna, type CommandResult } from './dna.js';

export const budget = (value: string) => {
  try {
    return parseBudget(value);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
};

/** What addRunOptions parses: the run settings under their own names, plus the flags named differently. */
export interface RunOptions
  extends Pick<
      RunSettings,
      'dataset' | 'dataDir' | 'tokenizer' | 'vocabSize' | 'tokenizerModel' | 'cache' | 'skipBadLines' | 'budget' | 'layers' | 'dModel' | 'seqLen' | 'batch' | 'seed' | 'evalWindows' | 'backend'
    >,
    Required<Pick<RunSettings, 'batchMode' | 'dataParallel'>> {
  heads: number;
  optimizer: 'adam' | 'adafactor';
  lr: number;
  warmup: number;
  clip: number;
  json?: boolean;
  out?: string;
}

export function addRunOptions(
  c: Command,
  defaultBudget: string,
  budgetFlag = '--budget',
  budgetHelp = 'training budget per model',
  dataParallel: { default: number; help: string } = { default: availableParallelism(), help: `${availableParallelism()}, one thread per core` },
): Command {
  const d = DEFAULT_RUN_SETTINGS;
  return c
    .option('--dataset <name>', `training data (${corpora.names().join(', ')})`, d.dataset)
    .option('--data-dir <dir>', 'where the dataset files are, for datasets that do not ship with primer-search')
    .option('--tokenizer <name>', `tokenizer (${tokenizers.names().join(', ')})`, d.tokenizer)
    .option('--vocab-size <n>', 'vocabulary size of a trained tokenizer (bpe; default 1024)', integer('--vocab-size', 258))
    .option('--tokenizer-model <file>', 'the model file of --tokenizer sentencepiece (e.g. T5\'s spiece.model)')
    .option('--cache <dir>', 'a token cache from primer data prepare (default for lm1b and c4: one built on first use in the cache directory)')
    .addOption(new Option('--batch-mode <mode>', 'windows anywhere in the concatenated documents (packed) or starting at a document/sentence start (sentence)').choices(['packed', 'sentence']).default('packed'))
    .option('--skip-bad-lines', 'count and skip unreadable lines of the dataset files instead of stopping at the first')
    .addOption(
      new Option(`${budgetFlag} <budget>`, `${budgetHelp}: time (90s, 2m, 1h), steps (500steps), tokens (200ktokens) or training FLOPs (2e13flops, 20tflops: the same steps on any machine)`)
        .argParser(budget)
        .default(parseBudget(defaultBudget), defaultBudget),
    )
    .option('--layers <n>', 'blocks stacked', integer('--layers', 1), d.layers)
    .option('--d-model <n>', 'model width (a multiple of 16)', dModelFlag, d.dModel)
    .option('--heads <n>', 'attention heads of the baselines (1, 2, 4 or 8)', headsFlag, 4)
    .option('--seq-len <n>', 'tokens per sequence', integer('--seq-len', 2), d.seqLen)
    .option('--batch <n>', 'sequences per step', integer('--batch', 1), d.batch)
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(['adam', 'adafactor']).default(DEFAULT_TRAIN_CONFIG.optimizer))
    .option('--lr <rate>', 'peak learning rate (after warmup; then inverse square root decay)', number('--lr'), DEFAULT_TRAIN_CONFIG.learningRate)
    .option('--warmup <steps>', 'linear warmup steps', integer('--warmup', 0), DEFAULT_TRAIN_CONFIG.warmupSteps)
    .option('--clip <norm>', 'clip gradients to this global norm (0: off)', number('--clip'), DEFAULT_TRAIN_CONFIG.clipNorm)
    .option('--seed <n>', 'seed for weights and batches', integer('--seed', 0), d.seed)
    .option('--eval-windows <n>', 'validation windows of --seq-len tokens scored at each evaluation', integer('--eval-windows', 1), d.evalWindows)
    .addOption(new Option('--backend <name>', 'force a TensorFlow.js backend (default: the fastest that starts; wasm-xnnpack and wasm-stock keep the products on XNNPACK, the latter with tfjs\'s own kernels)').choices([...BUILTIN_BACKENDS]))
    .addOption(
      new Option('--data-parallel <n>', "threads sharing each step's batch (data parallelism on one machine; the loss curve of 1 thread up to float rounding, the gradients being summed in another order)")
        .argParser(integer('--data-parallel', 1))
        .default(dataParallel.default, dataParallel.help),
    )
    .option('--json', 'print the full record as JSON')
    .option('--out <file>', 'write the full record (settings, figures, curves) as JSON');
}

/**
 * Checks the run flags whose valid values are known only once plugins have loaded (datasets,
 * tokenizers) or that name paths: a wrong one is a usage error (exit 2), found before any work.
 */
export function checkRunFlags(o: Pick<RunOptions, 'dataset' | 'tokenizer' | 'dataDir' | 'tokenizerModel' | 'cache' | 'backend'>): void {
  checkBackend(o.backend);
  checkName('--dataset', o.dataset, 'dataset', corpora.names());
  checkName('--tokenizer', o.tokenizer, 'tokenizer', tokenizers.names());
  checkPath('--data-dir', o.dataDir, 'folder');
  if (o.dataDir === undefined && corpora.get(o.dataset as never).needsDataDir) {
    throw new UsageError(`--dataset ${o.dataset} reads files you keep: give --data-dir DIR (where its files are; primer data prepare --help says what it expects)`);
  }
  checkPath('--tokenizer-model', o.tokenizerModel, 'file');
  if (o.cache !== undefined && existsSync(o.cache) && !statSync(o.cache).isDirectory()) throw new UsageError(`--cache: ${o.cache} is a file, not a token cache folder`);
}

export function settingsOf(o: RunOptions, checkpoints: number[]): RunSettings {
  return {
    dataset: o.dataset,
    dataDir: o.dataDir,
    tokenizer: o.tokenizer,
    vocabSize: o.vocabSize,
    tokenizerModel: o.tokenizerModel,
    cache: o.cache,
    skipBadLines: o.skipBadLines,
    batchMode: o.batchMode,
    layers: o.layers,
    dModel: o.dModel,
    seqLen: o.seqLen,
    batch: o.batch,
    budget: o.budget,
    seed: o.seed,
    evalWindows: o.evalWindows,
    backend: o.backend,
    dataParallel: o.dataParallel > 1 ? o.dataParallel : undefined,
    train: { optimizer: o.optimizer, learningRate: o.lr, warmupSteps: o.warmup, clipNorm: o.clip, checkpoints },
  };
}

/**
 * Tokenizes the dataset now (kept for the runs), saying what it did and how long it took: a
 * first BPE run trains a vocabulary, a first LM1B or C4 run builds a token cache.
 */
export async function announceData(io: CliIo, o: DataSettings): Promise<void> {
  io.stderr(`preparing ${o.dataset} with the ${o.tokenizer} tokenizer...\n`);
  const t0 = performance.now();
  let last = 0;
  const data = await prepareData(o, {
    onProgress: (p) => {
      const now = performance.now();
      if (now - last < 5000) return;
      last = now;
      io.stderr(`  building the token cache: ${p.split} ${fmt(p.documents)} documents, ${fmt(p.tokens)} tokens (${fmt(p.tokens / Math.max(p.seconds, 1e-3))} tokens/s)\n`);
    },
  });
  io.stderr(
    `data: ${fmt(data.train.length)} training and ${fmt(data.validation.length)} validation tokens, vocabulary ${data.tokenizer.vocabSize}${data.cache ? `, from the token cache ${data.cache}` : ''}${data.skippedLines ? ` (${fmt(data.skippedLines)} bad lines skipped)` : ''} (${((performance.now() - t0) / 1000).toFixed(1)}s)\n`,
  );
}

export { duration, fmt } from '../format.js';

function figures(name: string, r: RunRecord): string {
  const res = r.result;
  const lines = [
    `${name} on ${r.settings.dataset} (${r.settings.tokenizer} tokens, vocabulary ${r.data.vocabSize}) · backend ${describeBackend(r.backend)} · budget ${formatBudget(r.settings.budget)}`,
    `  steps         ${fmt(res.steps)}`,
    `  tokens        ${fmt(res.tokens)}`,
    `  tokens/s      ${fmt(res.tokensPerSecond)}`,
    `  wall time     ${duration(res.trainSeconds)} training + ${duration(res.evalSeconds)} evaluation`,
    `  parameters    ${fmt(res.parameters)}`,
    `  FLOPs/token   ${fmt(res.trainingFlopsPerToken / 1e6, 2)} M (training, forward + backward)`,
  ];
  if (res.final) lines.push(`  validation    loss ${res.final.loss.toFixed(4)} nats/token · perplexity ${res.final.perplexity.toFixed(3)}`);
  else lines.push(`  DIVERGED      ${res.divergence!.what} stopped being finite at step ${res.divergence!.step}`);
  lines.push(
    `  curve         ${res.evaluations.map((e) => `step ${e.step}: ${e.perplexity.toFixed(2)}`).join(' · ')}`,
  );
  return `${lines.join('\n')}\n`;
}

export function trainCommand(program: Command, io: CliIo, result: CommandResult): void {
  addRunOptions(
    program
      .command('train')
      .description('Train one model (a DNA file or a baseline name) on a dataset under a fixed budget, and report its validation perplexity and throughput.')
      .requiredOption('--model <name|file>', `a baseline (${baselines.names().join(', ')}) or a DNA file`)
      .option('--checkpoint <dir>', 'save the run in this folder every minute, at each evaluation, on Ctrl-C and at the end')
      .option('--resume', 'continue the run saved in --checkpoint (same model and settings)')
      .option('--save <dir>', 'when training completes, export the model to this folder: a tfjs-layers model (model.json + weights) with its tokenizer and a README (load it with @primer-search/layers, or try primer generate)'),
    '2m',
  ).action(async (o: RunOptions & { model: string; checkpoint?: string; resume?: boolean; save?: string }) => {
    if (o.resume && !o.checkpoint) throw new UsageError('--resume needs --checkpoint DIR');
    if (o.save !== undefined && existsSync(o.save) && !statSync(o.save).isDirectory()) throw new UsageError(`--save: ${o.save} is a file; give a folder`);
    checkRunFlags(o);
    if (o.resume) checkPath('--checkpoint', o.checkpoint, 'folder');
    const dna = loadDna(io, o.model, o.dModel, o.heads, '--model');
    if (!dna.ok) {
      io.stderr(`${dna.message}\n`);
      result.exitCode = 1;
      return;
    }
    const { readCheckpoint, runExperiment, selectBackend, speedup } = await loadTrainer();
    const backend = await selectBackend(o.backend);
    if (!o.json) {
      io.stderr(`backend: ${describeBackend(backend)}${backend.skipped.length ? ` (skipped: ${backend.skipped.map((s) => s.reason).join('; ')})` : ''}\n`);
      await announceData(io, settingsOf(o, []));
    }
    const resume = o.resume ? readCheckpoint(o.checkpoint!) : undefined;
    if (resume && !o.json) io.stderr(`resuming ${o.checkpoint} at step ${resume.step}\n`);
    const progress = trainingProgress(io, o.model);
    const stop = new AbortController();
    const onSigint = () => {
      if (stop.signal.aborted) process.exit(130);
      progress.note(o.checkpoint ? `stopping: saving ${o.checkpoint} (Ctrl-C again to quit at once)` : 'stopping (Ctrl-C again to quit at once)');
      stop.abort();
    };
    process.on('SIGINT', onSigint);
    let record: RunRecord;
    let saved: string | undefined;
    try {
      record = await runExperiment(dna.dna, settingsOf(o, DEFAULT_TRAIN_CONFIG.checkpoints), {
        backend,
        onProgress: (e) => progress.update(e),
        onEvaluation: (e) => progress.note(`  validation at step ${e.step}: loss ${e.loss.toFixed(4)}, perplexity ${e.perplexity.toFixed(3)}`),
        checkpoint: o.checkpoint ? { path: o.checkpoint } : undefined,
        resume,
        signal: stop.signal,
        onTrained: o.save
          ? async (model, data, r) => {
              if (r.status !== 'completed') return;
              progress.note(`exporting the model to ${o.save}...`);
              await exportLanguageModel(o.save!, model, data.tokenizer, { name: modelName(o.model), source: `primer train --model ${o.model}`, settings: settingsOf(o, []), result: r });
              saved = o.save;
            }
          : undefined,
      });
    } finally {
      process.off('SIGINT', onSigint);
      progress.stop();
    }
    if (record.result.status === 'stopped') {
      io.stderr(`stopped at step ${record.result.steps}${o.checkpoint ? `; continue with --checkpoint ${o.checkpoint} --resume` : ''}\n`);
      result.exitCode = 130;
      return;
    }
    if (o.out) io.writeFile(o.out, `${JSON.stringify(record, null, 2)}\n`);
    io.stdout(o.json ? `${JSON.stringify(record, null, 2)}\n` : figures(o.model, record));
    if (saved) io.stderr(`saved the model to ${saved} (try: primer generate --model ${saved} --prompt "The")\n`);
    else if (o.save) io.stderr(`not saved to ${o.save}: the run ${record.result.status}\n`);
    if (record.result.status !== 'completed') result.exitCode = 1;
  });
}

/** A model's name from --model: a baseline's own, or a DNA file's base name. */
export function modelName(model: string): string {
  return basename(model).replace(/\.(json|jsonc)$/i, '');
}

const COMPARE_CHECKPOINTS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

export function compareCommand(program: Command, io: CliIo, result: CommandResult): void {
  addRunOptions(
    program
      .command('compare')
      .description(
        "Train several models under the same budget, data and seed, and print a table like the paper's Table 4: final validation perplexity, " +
          'and speedup = (training time the first model needed to reach its final perplexity) / (time each model needed to reach that perplexity). ' +
          'With --seeds N each model trains with seeds --seed .. --seed+N-1: the table gives mean ± standard deviation, speedups with 95% intervals, and says which differences are within the noise.',
      )
      .option('--models <list>', 'comma-separated baselines or DNA files; the first is the reference', baselines.names().join(','))
      .option('--seeds <n>', 'train each model with this many seeds (--seed, --seed+1, ...), for intervals', integer('--seeds', 1, 100), 1)
      .option('--csv <file>', 'write every validation evaluation (model, seed, step, tokens, seconds, loss, perplexity) as CSV'),
    '2m',
  ).action(async (o: RunOptions & { models: string; seeds: number; csv?: string }) => {
    checkRunFlags(o);
    const names = o.models.split(',').map((m) => m.trim()).filter(Boolean);
    if (names.length === 0) throw new UsageError('--models: give one or more baselines or DNA files, separated by commas');
    const dnas = names.map((n) => ({ name: n, r: loadDna(io, n, o.dModel, o.heads, '--models') }));
    const bad = dnas.filter((d) => !d.r.ok);
    if (bad.length) {
      for (const d of bad) io.stderr(`${(d.r as { message: string }).message}\n`);
      result.exitCode = 1;
      return;
    }
    const { runExperiment, selectBackend, speedup } = await loadTrainer();
    const backend = await selectBackend(o.backend);
    const seeds = Array.from({ length: o.seeds }, (_, k) => o.seed + k);
    if (!o.json) {
      io.stderr(`backend: ${describeBackend(backend)} · budget ${formatBudget(o.budget)} per model · ${names.length} models${seeds.length > 1 ? ` × ${seeds.length} seeds (${seeds.join(', ')})` : ''}\n`);
      await announceData(io, settingsOf(o, []));
    }
    const records: Array<{ name: string; seed: number; record: RunRecord }> = [];
    for (const seed of seeds) {
      for (const { name, r } of dnas) {
        const progress = trainingProgress(io, `${name}${seeds.length > 1 ? ` seed ${seed}` : ''}`.padEnd(14));
        try {
          const record = await runExperiment((r as { dna: unknown }).dna, settingsOf({ ...o, seed }, COMPARE_CHECKPOINTS), { backend, onProgress: (e) => progress.update(e) });
          records.push({ name, seed, record });
        } finally {
          progress.stop();
        }
      }
    }
    const start = Math.log(records[0]!.record.data.vocabSize);
    const of = (name: string, seed: number) => records.find((x) => x.name === name && x.seed === seed)!.record;
    const perSeed = records.map(({ name, seed, record }) => ({
      model: name,
      seed,
      parameters: record.result.parameters,
      steps: record.result.steps,
      tokensPerSecond: record.result.tokensPerSecond,
      trainSeconds: record.result.trainSeconds,
      finalLoss: record.result.final?.loss,
      finalPerplexity: record.result.final?.perplexity,
      // against the reference trained with the same seed (same weights' draw and batches)
      speedup: record.result.status === 'completed' ? speedup(of(names[0]!, seed).result.evaluations, record.result.evaluations, start, o.budget.kind === 'flops' ? 'flops' : 'seconds') : undefined,
      status: record.result.status,
    }));
    const rows = names.map((model) => {
      const runs = perSeed.filter((r) => r.model === model);
      const done = runs.filter((r) => r.finalPerplexity !== undefined);
      const ppl = done.length ? seedStatistics(done.map((r) => r.finalPerplexity!)) : undefined;
      const sp = runs.every((r) => r.speedup !== undefined) ? seedStatistics(runs.map((r) => r.speedup!)) : undefined;
      // paired by seed: this model's final perplexity minus the reference's
      const diffs = seeds.flatMap((seed) => {
        const a = runs.find((r) => r.seed === seed)?.finalPerplexity;
        const b = perSeed.find((r) => r.model === names[0] && r.seed === seed)?.finalPerplexity;
        return a === undefined || b === undefined ? [] : [a - b];
      });
      const diff = model !== names[0] && diffs.length === seeds.length && diffs.length > 1 ? seedStatistics(diffs) : undefined;
      const verdict = !diff?.interval ? undefined : diff.interval[1] < 0 ? 'better' : diff.interval[0] > 0 ? 'worse' : 'within the noise';
      return {
        model,
        parameters: runs[0]!.parameters,
        steps: seedStatistics(runs.map((r) => r.steps)).mean,
        tokensPerSecond: seedStatistics(runs.map((r) => r.tokensPerSecond)).mean,
        trainSeconds: seedStatistics(runs.map((r) => r.trainSeconds)).mean,
        finalLoss: done.length ? seedStatistics(done.map((r) => r.finalLoss!)).mean : undefined,
        finalPerplexity: ppl?.mean,
        perplexity: ppl,
        speedup: sp?.mean,
        speedupStatistics: sp,
        perplexityDifference: diff,
        verdict,
        completed: done.length,
        status: done.length === runs.length ? 'completed' : runs.find((r) => r.status !== 'completed')!.status,
      };
    });
    if (o.csv) {
      const lines = ['model,seed,step,tokens,seconds,loss,perplexity'];
      for (const { name, seed, record } of records) {
        for (const e of record.result.evaluations) lines.push([name, seed, e.step, e.tokens, e.seconds.toFixed(3), e.loss.toFixed(6), e.perplexity.toFixed(6)].join(','));
      }
      io.writeFile(o.csv, `${lines.join('\n')}\n`);
    }
    if (o.out) io.writeFile(o.out, `${JSON.stringify({ rows, perSeed, records }, null, 2)}\n`);
    if (o.json) {
      io.stdout(`${JSON.stringify({ reference: names[0], seeds, rows, perSeed, records }, null, 2)}\n`);
      return;
    }
    const many = seeds.length > 1;
    const interval = (st?: { interval?: [number, number] }, digits = 2) => (st?.interval ? ` [${st.interval[0].toFixed(digits)}, ${st.interval[1].toFixed(digits)}]` : '');
    const table = [
      ['model', 'params', 'steps', 'tokens/s', many ? 'val perplexity (mean ± sd)' : 'val perplexity', `speedup vs ${names[0]}${many ? ' (mean [95%])' : ''}`, ...(many ? [`vs ${names[0]}`] : [])],
      ...rows.map((r) => [
        r.model,
        fmt(r.parameters),
        fmt(r.steps),
        fmt(r.tokensPerSecond),
        r.perplexity === undefined ? 'diverged' : `${r.perplexity.mean.toFixed(3)}${many ? ` ± ${r.perplexity.sd.toFixed(3)}` : ''}${r.completed < seeds.length ? ` (${r.completed} of ${seeds.length} seeds)` : ''}`,
        r.speedup === undefined ? (r.status === 'completed' ? 'not reached' : '-') : `${r.speedup.toFixed(2)}x${many ? interval(r.speedupStatistics) : ''}`,
        ...(many ? [r.model === names[0] ? '(reference)' : (r.verdict ?? '-')] : []),
      ]),
    ];
    const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
    io.stdout(`\n${table.map((row) => row.map((x, c) => (c === 0 ? x.padEnd(widths[c]!) : x.padStart(widths[c]!))).join('  ')).join('\n')}\n`);
    io.stdout(
      `\n${records[0]!.record.settings.dataset}, ${formatBudget(o.budget)} per model, ${o.layers} layers, dModel ${o.dModel}, seq ${o.seqLen}, batch ${o.batch}, ${many ? `seeds ${seeds.join(', ')}` : `seed ${o.seed}`}, backend ${describeBackend(backend)}.\n`,
    );
    if (many) {
      io.stdout(
        `Intervals: 95%, Student's t over the ${seeds.length} seeds. "within the noise": the 95% interval of the perplexity difference from ${names[0]} (paired by seed) contains 0.\n`,
      );
    }
    if (o.budget.kind === 'flops') {
      io.stdout(
        `Speedups are in training FLOPs (the budget's measure): the FLOPs ${names[0]} needed to reach its final perplexity over the FLOPs each model needed to reach it.\n`,
      );
    }
  });
}
