import { checkBackend, checkName, checkOutputFolder, checkPath, checkpointEvery, dModel as dModelFlag, didYouMean, heads as headsFlag, number } from '../flags.js';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { escapeText, isPrimerError, quote } from '@primer-search/core';
import { baselines } from '@primer-search/baselines';
import { checkMqar, corpora, MQAR_DEFAULTS, prepareData, tokenizers, type DataSettings } from '@primer-search/datasets';
import {
  BACKEND_OPTIONS,
  DEFAULT_RUN_SETTINGS,
  comparePaired,
  comparisonNotes,
  describeBackend,
  DEFAULT_TRAIN_CONFIG,
  differenceCell,
  differenceHeader,
  formatBudget,
  parseBudget,
  seedStatistics,
  speedupAxisOf,
  speedupCell,
  speedupHeader,
  type RunSettings,
} from '@primer-search/study';
import type { RunRecord, TrainCheckpoint } from '@primer-search/trainer-gpu';
import { compareRunCheckpoint, compareRunKey, keepCompareRun, keptCompareRuns, lockCompareFolder, readKeptCompareRun, type DataIdentity } from '../compare-runs.js';
import { loadTrainer } from '../trainer.js';
import { exportLanguageModel } from '../export-model.js';
import { alignColumns, csvField, duration, fmt, jsonText } from '../format.js';
import { isRegularOrAbsent, UsageError, type CliIo } from '../io.js';
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
      'dataset' | 'dataDir' | 'tokenizer' | 'vocabSize' | 'mqarPairs' | 'tokenizerModel' | 'cache' | 'skipBadLines' | 'budget' | 'layers' | 'dModel' | 'seqLen' | 'batch' | 'seed' | 'evalWindows' | 'backend'
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
    .option('--vocab-size <n>', 'vocabulary size of a trained tokenizer (bpe, 258 or more; default 1024), or of the mqar dataset (default 64)', integer('--vocab-size', 8))
    .option('--mqar-pairs <n>', 'with --dataset mqar: key-value pairs per example, before the queries (default 8)', integer('--mqar-pairs', 1))
    .option('--tokenizer-model <file>', 'the model file of --tokenizer sentencepiece (e.g. T5\'s spiece.model)')
    .option('--cache <dir>', 'a token cache from primer data prepare (default for lm1b, c4 and text: one built on first use in the cache directory)')
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
    .addOption(new Option('--backend <name>', 'force a TensorFlow.js backend (default: the fastest that starts, a GPU only through tfjs-node-gpu; auto: the same with a GPU through WebGPU too; webgpu: WebGPU, a software adapter included; wasm-xnnpack and wasm-stock keep the products on XNNPACK, the latter with tfjs\'s own kernels)').choices([...BACKEND_OPTIONS]))
    .addOption(
      new Option('--data-parallel <n>', "threads sharing each step's batch (data parallelism on one machine; the loss curve of 1 thread up to float rounding, the gradients being summed in another order)")
        .argParser(integer('--data-parallel', 1))
        .default(dataParallel.default, dataParallel.help),
    )
    .option('--json', 'print the full record as JSON')
    .option('--out <file>', 'write the full record (settings, figures, curves) as JSON')
    .option('--config <file>', "settings from a JSON or YAML file, keyed by the flags' long names (e.g. budget-per-candidate: 1e11flops); flags given as well override it");
}

/**
 * Checks the run flags whose valid values are known only once plugins have loaded (datasets,
 * tokenizers) or that name paths: a wrong one is a usage error (exit 2), found before any work.
 */
export function checkRunFlags(o: Pick<RunOptions, 'dataset' | 'tokenizer' | 'dataDir' | 'tokenizerModel' | 'cache' | 'backend'> & Partial<Pick<RunOptions, 'vocabSize' | 'mqarPairs' | 'seqLen'>>): void {
  checkBackend(o.backend);
  checkName('--dataset', o.dataset, 'dataset', corpora.names());
  if (o.dataset === 'mqar') {
    try {
      checkMqar({ vocab: o.vocabSize ?? MQAR_DEFAULTS.vocab, pairs: o.mqarPairs ?? MQAR_DEFAULTS.pairs, length: o.seqLen ?? DEFAULT_RUN_SETTINGS.seqLen });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  } else {
    if (o.mqarPairs !== undefined) throw new UsageError('--mqar-pairs goes with --dataset mqar');
    if (o.vocabSize !== undefined && o.vocabSize < 258) throw new UsageError(`--vocab-size ${o.vocabSize}: a trained tokenizer's vocabulary needs 258 ids or more (256 bytes, merges, end of document)`);
  }
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
    // absolute, as are the tokenizer model and the cache: a study resumed or retrained from another folder reads the same files
    dataDir: o.dataDir === undefined ? undefined : resolve(o.dataDir),
    tokenizer: o.tokenizer,
    vocabSize: o.vocabSize,
    ...(o.mqarPairs !== undefined ? { mqarPairs: o.mqarPairs } : {}),
    tokenizerModel: o.tokenizerModel === undefined ? undefined : resolve(o.tokenizerModel),
    cache: o.cache === undefined ? undefined : resolve(o.cache),
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
 * first BPE run trains a vocabulary, a first LM1B, C4 or text run builds a token cache.
 */
export async function announceData(io: CliIo, o: DataSettings): Promise<DataIdentity> {
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
  return dataIdentity(data);
}

/** What a run record keeps of its data, and the tokenizer's fingerprint. */
const dataIdentity = (data: Awaited<ReturnType<typeof prepareData>>): DataIdentity => ({
  trainTokens: data.train.length,
  validationTokens: data.validation.length,
  vocabSize: data.tokenizer.vocabSize,
  tokenizer: data.tokenizer.fingerprint,
});

export { duration, fmt } from '../format.js';

function figures(name: string, r: RunRecord): string {
  const res = r.result;
  const lines = [
    `${name} on ${r.settings.dataset} (${r.settings.dataset === "mqar" ? "mqar" : r.settings.tokenizer} tokens, vocabulary ${r.data.vocabSize}) · backend ${describeBackend(r.backend)} · budget ${formatBudget(r.settings.budget)}`,
    `  steps         ${fmt(res.steps)}`,
    `  tokens        ${fmt(res.tokens)}`,
    `  tokens/s      ${fmt(res.tokensPerSecond)}`,
    `  wall time     ${duration(res.trainSeconds)} training + ${duration(res.evalSeconds)} evaluation`,
    // a compiled step that gave up says why (it is slower on the tape); one that replays needs no line
    ...(res.compiledStep?.state === 'tape' ? [`  step          on the tape, not compiled: ${res.compiledStep.reason}`] : []),
    `  parameters    ${fmt(res.parameters)}`,
    `  FLOPs/token   ${fmt(res.trainingFlopsPerToken / 1e6, 2)} M (training, forward + backward)`,
  ];
  if (res.final) {
    lines.push(`  validation    loss ${res.final.loss.toFixed(4)} nats/token · perplexity ${res.final.perplexity.toFixed(3)}${res.final.inContext !== undefined ? ` · in-context score ${res.final.inContext.toFixed(3)}` : ''}`);
    if (res.final.recall !== undefined) lines.push(`  recall        ${(res.final.recall * 100).toFixed(1)}% of the queries answered (the most likely next token)`);
  } else lines.push(`  DIVERGED      ${res.divergence!.what} stopped being finite at step ${res.divergence!.step}`);
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
      .option('--save <dir>', 'when training completes, export the model to this folder: a tfjs-layers model (model.json + weights) with its tokenizer and a README (load it with @primer-search/layers, or try primer generate); a folder that holds files is refused unless --force')
      .option('--force', 'let --save write over the files of a folder that holds some'),
    '2m',
  ).action(async (o: RunOptions & { model: string; checkpoint?: string; resume?: boolean; save?: string; force?: boolean }) => {
    if (o.resume && !o.checkpoint) throw new UsageError('--resume needs --checkpoint DIR');
    checkOutputFolder('--save', o.save, o.force);
    checkRunFlags(o);
    if (o.resume) checkPath('--checkpoint', o.checkpoint, 'folder');
    const dna = loadDna(io, o.model, o.dModel, o.heads, '--model');
    if (!dna.ok) {
      io.stderr(`${dna.message}\n`);
      result.exitCode = 1;
      return;
    }
    const { readCheckpoint, runExperiment, selectBackend } = await loadTrainer();
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
    if (o.out) io.writeFile(o.out, jsonText(record));
    io.stdout(o.json ? jsonText(record) : figures(o.model, record));
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
          'and speedup = (budget the reference needed to reach its final perplexity) / (budget each model needed to reach that perplexity), measured in the budget\'s own unit (steps, tokens, FLOPs; seconds only under a time budget). ' +
          'With --seeds N each model trains with seeds --seed .. --seed+N-1: the table gives mean ± standard deviation, and from 3 seeds 95% intervals and whether each final perplexity differs from the reference\'s beyond the noise.',
      )
      .option('--models <list>', 'comma-separated baselines or DNA files', baselines.names().join(','))
      .option('--labels <list>', 'names for the models in the table, comma-separated, in the order of --models (default: a baseline\'s name, a DNA file\'s name without .json)')
      .option('--against <model>', 'the reference the speedups and verdicts are measured against: one of the labels (default: the first model)')
      .option('--seeds <n>', 'train each model with this many seeds (--seed, --seed+1, ...); intervals and verdicts from 3', integer('--seeds', 1, 100), 1)
      .option('--csv <file>', 'write every validation evaluation (model, seed, step, tokens, seconds, FLOPs, loss, perplexity) as CSV, after each run (a comparison stopped early keeps the finished runs)')
      .option(
        '--checkpoint <dir>',
        "keep the comparison's progress in this folder: each finished run's record, and the run under way saved as it trains (--checkpoint-every) and when stopped (Ctrl-C, SIGTERM); after a stop, a killed process or a lost session, the same command with --resume continues where it left off. A folder that already keeps runs is refused without --resume",
      )
      .option(
        '--resume',
        'continue the comparison kept in --checkpoint: a finished run of the same model, seed, settings and data is read back, not trained again (another --budget is another run), and a run stopped part-way continues from its last save, with the numbers of a run never stopped under a step, token or FLOP budget',
      )
      .addOption(
        new Option('--checkpoint-every <time>', 'with --checkpoint: how often the run under way is saved, in training time, besides at each evaluation and on Ctrl-C; 0: after every step; off: never (a stopped run starts again)')
          .argParser(checkpointEvery)
          .default(60, '1m'),
      ),
    '2m',
  ).action(async (o: RunOptions & { models: string; labels?: string; against?: string; seeds: number; csv?: string; checkpoint?: string; resume?: boolean; checkpointEvery: number | false }, command: Command) => {
    if (o.resume && !o.checkpoint) throw new UsageError('--resume needs --checkpoint DIR');
    if (!o.checkpoint && command.getOptionValueSource('checkpointEvery') === 'cli') throw new UsageError('--checkpoint-every needs --checkpoint DIR');
    if (o.resume) checkPath('--checkpoint', o.checkpoint, 'folder');
    else if (o.checkpoint && existsSync(o.checkpoint) && !statSync(o.checkpoint).isDirectory()) throw new UsageError(`--checkpoint: ${o.checkpoint} is a file, not a folder`);
    checkRunFlags(o);
    const names = o.models.split(',').map((m) => m.trim()).filter(Boolean);
    if (names.length === 0) throw new UsageError('--models: give one or more baselines or DNA files, separated by commas');
    const labels = o.labels === undefined ? names.map(modelName) : o.labels.split(',').map((m) => m.trim());
    if (labels.length !== names.length || labels.some((l) => !l)) throw new UsageError(`--labels: give one name per model of --models (${names.length}), separated by commas`);
    const twice = labels.find((l, i) => labels.indexOf(l) !== i);
    if (twice) throw new UsageError(`two models are labelled ${quote(twice)}: give each its own name with --labels`);
    const reference = o.against ?? labels[0]!;
    if (!labels.includes(reference)) {
      throw new UsageError(`--against: ${quote(reference)} is not one of the models${didYouMean(reference, labels)}: ${labels.join(', ')}`);
    }
    const dnas = names.map((n, i) => ({ name: labels[i]!, r: loadDna(io, n, o.dModel, o.heads, '--models') }));
    const bad = dnas.filter((d) => !d.r.ok);
    if (bad.length) {
      for (const d of bad) io.stderr(`${(d.r as { message: string }).message}\n`);
      result.exitCode = 1;
      return;
    }
    const dir = o.checkpoint;
    const models: ComparedModels = { dnas, labels, names, reference };
    if (!dir) return compareRuns(o, models, undefined, io, result);
    // taken before any work: a second comparison on the same folder, or one that takes no files, is refused now
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new UsageError(`--checkpoint: cannot make the folder ${dir} (${escapeText((e as Error).message, 200)})`);
    }
    const unlock = lockCompareFolder(dir);
    // released on a second Ctrl-C's exit too
    process.once('exit', unlock);
    try {
      const kept = keptCompareRuns(dir).length;
      if (kept && !o.resume) throw new UsageError(`--checkpoint: ${dir} holds ${kept} run${kept === 1 ? '' : 's'} of a comparison: continue it with --resume, or give another folder`);
      await compareRuns(o, models, dir, io, result);
    } finally {
      process.off('exit', unlock);
      unlock();
    }
  });
}

/** The signals that stop a comparison kept in a folder (a terminal closed included), and the exit status each gives. */
const STOPPING = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const exitOnStop = (signal: NodeJS.Signals | undefined) => (signal === 'SIGTERM' ? 143 : signal === 'SIGHUP' ? 129 : 130);

/** The models of a comparison: each one's program under its label, as given (`names`), and the one the others are measured against. */
interface ComparedModels {
  dnas: Array<{ name: string; r: ReturnType<typeof loadDna> }>;
  labels: string[];
  names: string[];
  reference: string;
}

/** Trains every model with every seed (kept in `dir` when given, and continued from it with --resume), then prints the comparison. */
async function compareRuns(
  o: RunOptions & { seeds: number; csv?: string; resume?: boolean; checkpointEvery: number | false },
  { dnas, labels, names, reference }: ComparedModels,
  dir: string | undefined,
  io: CliIo,
  result: CommandResult,
): Promise<void> {
  const { readCheckpoint, runExperiment, selectBackend } = await loadTrainer();
  const backend = await selectBackend(o.backend);
  const seeds = Array.from({ length: o.seeds }, (_, k) => o.seed + k);
  if (!o.json) io.stderr(`backend: ${describeBackend(backend)} · budget ${formatBudget(o.budget)} per model · ${names.length} models${seeds.length > 1 ? ` × ${seeds.length} seeds (${seeds.join(', ')})` : ''}\n`);
  // prepared before any signal is caught (a first BPE vocabulary or token cache takes a while)
  const data = o.json ? dataIdentity(await prepareData(settingsOf(o, []))) : await announceData(io, settingsOf(o, []));
  const records: Array<{ name: string; seed: number; record: RunRecord }> = [];
  let csvHolds = -1; // the runs the --csv file was last written with
  // with --checkpoint, Ctrl-C (or a SIGTERM) stops the run under way between steps and saves it
  const stop = new AbortController();
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) process.exit(exitOnStop(signal));
    signalled = signal;
    io.stderr(`\nstopping${o.checkpointEvery === false ? '' : `: saving the run under way in ${dir}`}${signal === 'SIGINT' ? ' (Ctrl-C again to quit at once)' : ''}\n`);
    stop.abort();
  };
  if (dir) for (const s of STOPPING) process.on(s, onSignal);
  // every run of the comparison, in order, with its key in the folder
  const plan = seeds.flatMap((seed) =>
    dnas.map(({ name, r }) => {
      const dna = (r as { dna: unknown }).dna;
      const settings = settingsOf({ ...o, seed }, COMPARE_CHECKPOINTS);
      return { name, seed, dna, settings, title: `${name}${seeds.length > 1 ? ` seed ${seed}` : ''}`, key: dir ? compareRunKey(dna, settings) : undefined };
    }),
  );
  if (dir && o.resume) {
    // kept runs no run of this comparison stands for are not read: say so, rather than train past them in silence
    const planned = new Set(plan.map((x) => x.key));
    const unused = keptCompareRuns(dir).filter((k) => !planned.has(k)).length;
    if (unused) io.stderr(`warning: ${dir} keeps ${unused} run${unused === 1 ? '' : 's'} that no run of this comparison stands for (another budget, other settings or models): ${unused === 1 ? 'it is' : 'they are'} not read\n`);
  }
  try {
    for (const { name, seed, dna, settings, title, key } of plan) {
      // a stop that came as the last run ended: no new run is begun
      if (stop.signal.aborted) {
        io.stderr(`stopped before ${title}; continue with the same command and --resume\n`);
        result.exitCode = exitOnStop(signalled);
        return;
      }
      const folder = key ? compareRunCheckpoint(dir!, key) : undefined;
      const kept = key && o.resume ? readKeptCompareRun(dir!, key, settings, data, backend) : undefined;
      if (kept && 'record' in kept) {
        records.push({ name, seed, record: kept.record });
        // a checkpoint left by a kill between the record and its removal (or, harmlessly, the
        // same model under a second label: the same key, the same run)
        rmSync(folder!, { recursive: true, force: true });
        const f = kept.record.result.final;
        io.stderr(`${title}: finished before (${f ? `perplexity ${f.perplexity.toFixed(3)}` : kept.record.result.status}), kept in ${dir}${kept.elsewhere ? `; trained on ${kept.elsewhere}, not here` : ''}\n`);
        continue;
      }
      if (kept) io.stderr(`warning: ${kept.problem}: training ${title} again\n`);
      let resume: TrainCheckpoint | undefined;
      // a saved run continues even with --checkpoint-every off (which only stops new saves)
      if (folder && o.resume && existsSync(join(folder, 'checkpoint.json'))) {
        try {
          resume = readCheckpoint(folder);
        } catch (e) {
          io.stderr(`warning: ${escapeText((e as Error).message, 300)}: training ${title} from the start\n`);
        }
      }
      const progress = trainingProgress(io, title.padEnd(14));
      let record: RunRecord;
      try {
        const train = (from: TrainCheckpoint | undefined) =>
          runExperiment(dna, settings, {
            backend,
            onProgress: (e) => progress.update(e),
            checkpoint: folder && o.checkpointEvery !== false ? { path: folder, everySeconds: o.checkpointEvery } : undefined,
            resume: from,
            signal: dir ? stop.signal : undefined,
          });
        if (resume) progress.note(`${title}: continuing from step ${resume.step}, saved in ${folder}`);
        try {
          record = await train(resume);
        } catch (e) {
          // a checkpoint made by another run (other settings, another model): not this run's
          if (!resume || !(isPrimerError(e) && e.code === 'BAD_CHECKPOINT')) throw e;
          progress.note(`warning: ${escapeText(e.message, 300)}: training ${title} from the start`);
          record = await train(undefined);
        }
      } finally {
        progress.stop();
      }
      if (record.result.status === 'stopped') {
        io.stderr(
          `stopped ${title} at step ${record.result.steps}${o.checkpointEvery !== false ? `, saved in ${folder}` : ''}; continue with the same command and --resume${o.checkpointEvery === false ? ` (${title} starts again: --checkpoint-every off)` : ''}\n`,
        );
        result.exitCode = exitOnStop(signalled);
        return;
      }
      records.push({ name, seed, record });
      if (dir) {
        keepCompareRun(dir, key!, name, seed, data, record);
        if (folder) rmSync(folder, { recursive: true, force: true });
      }
      // after every run, so that a comparison stopped or failing later keeps the finished runs'
      // curves (a file replaced whole each time; a pipe or a device is written once, at the end)
      if (o.csv && isRegularOrAbsent(o.csv)) {
        io.writeFile(o.csv, compareCsv(records));
        csvHolds = records.length;
      }
    }
  } finally {
    if (dir) for (const s of STOPPING) process.off(s, onSignal);
  }
  // once more at the end: a pipe or a device gets the curves only now, and so does a file when the last runs were kept
  if (o.csv && csvHolds !== records.length) io.writeFile(o.csv, compareCsv(records));
  const axis = speedupAxisOf(o.budget);
  const start = Math.log(records[0]!.record.data.vocabSize);
  const of = (name: string, seed: number) => records.find((x) => x.name === name && x.seed === seed)!.record;
  const run = (record: RunRecord) =>
    record.result.status === 'completed' && record.result.final ? { curve: record.result.evaluations, perplexity: record.result.final.perplexity } : undefined;
  const comparisons = new Map(labels.map((name) => [name, comparePaired(seeds.map((seed) => ({ seed, reference: run(of(reference, seed)), program: run(of(name, seed)) })), axis, start)]));
  const perSeed = records.map(({ name, seed, record }) => {
    const own = comparePaired([{ seed, reference: run(of(reference, seed)), program: run(record) }], axis, start);
    return {
      model: name,
      seed,
      parameters: record.result.parameters,
      steps: record.result.steps,
      tokensPerSecond: record.result.tokensPerSecond,
      trainSeconds: record.result.trainSeconds,
      finalLoss: record.result.final?.loss,
      finalPerplexity: record.result.final?.perplexity,
      // against the reference trained with the same seed (same weights' draw and batches)
      speedup: own.speedup?.mean,
      status: record.result.status,
    };
  });
  const rows = labels.map((model) => {
    const runs = perSeed.filter((r) => r.model === model);
    const done = runs.filter((r) => r.finalPerplexity !== undefined);
    const ppl = done.length ? seedStatistics(done.map((r) => r.finalPerplexity!)) : undefined;
    const c = comparisons.get(model)!;
    const isReference = model === reference;
    return {
      model,
      source: names[labels.indexOf(model)]!,
      parameters: runs[0]!.parameters,
      steps: seedStatistics(runs.map((r) => r.steps)).mean,
      tokensPerSecond: seedStatistics(runs.map((r) => r.tokensPerSecond)).mean,
      trainSeconds: seedStatistics(runs.map((r) => r.trainSeconds)).mean,
      finalLoss: done.length ? seedStatistics(done.map((r) => r.finalLoss!)).mean : undefined,
      finalPerplexity: ppl?.mean,
      perplexity: ppl,
      // geometric mean over the seeds where it reached the reference's final perplexity (the reference: 1 by definition)
      speedup: isReference ? (done.length ? 1 : undefined) : c.speedup?.mean,
      speedupStatistics: isReference ? undefined : c.speedup,
      notReached: isReference ? 0 : c.notReached,
      unmeasured: isReference ? 0 : c.unmeasured,
      perplexityDifference: isReference ? undefined : c.perplexityDifference,
      verdict: isReference ? undefined : c.verdict,
      completed: done.length,
      status: done.length === runs.length ? 'completed' : runs.find((r) => r.status !== 'completed')!.status,
    };
  });
  // one record, the same in --out and --json
  const report = { reference, axis, seeds, rows, perSeed, records };
  if (o.out) io.writeFile(o.out, jsonText(report));
  if (o.json) {
    io.stdout(jsonText(report));
    return;
  }
  const many = seeds.length > 1;
  const table = [
    ['model', 'params', 'steps', 'tokens/s', many ? 'val perplexity (mean ± sd)' : 'val perplexity', speedupHeader(reference, seeds.length), ...(many ? [differenceHeader(reference, seeds.length)] : [])],
    ...rows.map((r) => [
      r.model,
      fmt(r.parameters),
      fmt(r.steps),
      fmt(r.tokensPerSecond),
      r.perplexity === undefined ? 'diverged' : `${r.perplexity.mean.toFixed(3)}${many ? ` ± ${r.perplexity.sd.toFixed(3)}` : ''}${r.completed < seeds.length ? ` (${r.completed} of ${seeds.length} seeds)` : ''}`,
      r.model === reference ? (r.perplexity ? (many ? '1.00x' : '1.00x (reference)') : '-') : speedupCell(comparisons.get(r.model)!),
      ...(many ? [r.model === reference ? '(reference)' : differenceCell(r)] : []),
    ]),
  ];
  io.stdout(`\n${alignColumns(table)}\n`);
  io.stdout(
    `\n${records[0]!.record.settings.dataset}, ${formatBudget(o.budget)} per model, ${o.layers} layers, dModel ${o.dModel}, seq ${o.seqLen}, batch ${o.batch}, ${many ? `seeds ${seeds.join(', ')}` : `seed ${o.seed}`}, backend ${describeBackend(backend)}.\n`,
  );
  const sources = rows.filter((r) => r.source !== r.model);
  if (sources.length) io.stdout(`${sources.map((r) => `${r.model}: ${r.source}`).join(' · ')}\n`);
  for (const line of comparisonNotes(reference, axis, seeds.length)) io.stdout(`${line}\n`);
}

/** primer compare --csv: every validation evaluation of the runs finished so far. */
function compareCsv(records: Array<{ name: string; seed: number; record: RunRecord }>): string {
  const lines = ['model,seed,step,tokens,seconds,flops,loss,perplexity'];
  for (const { name, seed, record } of records) {
    for (const e of record.result.evaluations) lines.push([csvField(name), seed, e.step, e.tokens, e.seconds.toFixed(3), e.flops ?? '', e.loss.toFixed(6), e.perplexity.toFixed(6)].join(','));
  }
  return `${lines.join('\n')}\n`;
}

