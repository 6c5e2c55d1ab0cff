import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { baselines } from '@primer-search/baselines';
import { PrimerError, type Seed } from '@primer-search/core';
import { loadTokenizer, prepareData } from '@primer-search/datasets';
import { dnaHash, type Dna } from '@primer-search/dna';
import { loadPlugins } from '@primer-search/runner/controller';
import { maskUrl, type EvaluationRecord } from '@primer-search/store';
import { BACKEND_OPTIONS, DEFAULT_RUN_SETTINGS, decodeWeights, describeBackend, formatBudget, parseBudget, type RunSettings, type StudyConfig } from '@primer-search/study';
import { exportLanguageModel, type ExportMetadata } from '../export-model.js';
import { jsonText } from '../format.js';
import { checkBackend, checkOutputFolder, checkPath, heads as headsFlag, integer, number } from '../flags.js';
import { UsageError, type CliIo } from '../io.js';
import { trainingProgress } from '../progress.js';
import { loadTrainer } from '../trainer.js';
import type { RunContext } from '@primer-search/trainer-gpu';
import { loadDna, type CommandResult } from './dna.js';
import { checkStudyPlugins, openForReading, pluginSpecifier } from '../studies.js';
import { duration, fmt, modelName } from './train.js';

const backendOption = () =>
  new Option('--backend <name>', 'force a TensorFlow.js backend (default: the fastest that starts; auto: with a GPU through WebGPU too)').choices([...BACKEND_OPTIONS]);

/** An exported model folder: model.json and tokenizer.json, or a usage error naming the flag. */
function checkModelFolder(flag: string, dir: string): void {
  checkPath(flag, dir, 'folder');
  for (const f of ['model.json', 'tokenizer.json']) {
    if (!existsSync(join(dir, f))) throw new UsageError(`${flag}: ${dir} has no ${f}: not a model exported by primer train --save or primer export`);
  }
}

export function generateCommand(program: Command, io: CliIo, result: CommandResult): void {
  program
    .command('generate')
    .description('Sample text from an exported model (primer train --save, primer export): the prompt is encoded with the tokenizer it was trained with, and the continuation is printed as it is sampled.')
    .requiredOption('--model <dir>', 'an exported model folder (model.json, tokenizer.json)')
    .requiredOption('--prompt <text>', 'the text to continue')
    .option('--tokens <n>', 'tokens to sample', integer('--tokens', 1), 200)
    .option('--temperature <t>', 'softmax temperature (0: always the most likely token)', number('--temperature'), 0.8)
    .option('--top-k <k>', 'sample among the k most likely tokens only (0: all)', integer('--top-k', 0), 0)
    .option('--seed <n>', 'seed of the sampling (the same seed, model and prompt give the same text)', integer('--seed', 0), 0)
    .addOption(backendOption())
    .option('--json', 'print the prompt, the ids and the text as JSON')
    .action(async (o: { model: string; prompt: string; tokens: number; temperature: number; topK: number; seed: number; backend?: string; json?: boolean }) => {
      checkModelFolder('--model', o.model);
      checkBackend(o.backend);
      const { selectBackend } = await loadTrainer();
      const backend = await selectBackend(o.backend as never);
      const tokenizer = await loadTokenizer(o.model);
      const { generate } = await import('@primer-search/layers');
      const { loadModel } = await import('@primer-search/layers/node');
      const model = await loadModel(o.model).catch((e: Error) => {
        throw new PrimerError('BAD_MODEL', `the model ${o.model} cannot be loaded: ${e.message}`);
      });
      const prompt = Array.from(tokenizer.encode(o.prompt));
      if (prompt.length === 0) throw new UsageError('--prompt: the prompt encodes to no tokens; give some text');
      if (!o.json) io.stderr(`${o.model}: ${fmt(model.countParams())} parameters, ${tokenizer.name} tokens · backend ${describeBackend(backend)}\n`);
      const ids: number[] = [];
      let shown = '';
      if (!o.json) io.stdout(o.prompt);
      const t0 = performance.now();
      await generate(model, prompt, {
        tokens: o.tokens,
        temperature: o.temperature,
        topK: o.topK,
        seed: o.seed,
        stopAt: tokenizer.endOfDocument,
        onToken: (id) => {
          ids.push(id);
          if (o.json) return;
          // print what decodes completely so far (a byte token may be half a character)
          const text = tokenizer.decode(ids);
          const whole = text.endsWith('\uFFFD') ? text.slice(0, text.lastIndexOf('\uFFFD')) : text;
          if (whole.length > shown.length && whole.startsWith(shown)) {
            io.stdout(whole.slice(shown.length));
            shown = whole;
          }
        },
      });
      const text = tokenizer.decode(ids);
      if (o.json) io.stdout(jsonText({ prompt: o.prompt, promptIds: prompt, ids, text, seed: o.seed, temperature: o.temperature, topK: o.topK }));
      else {
        if (text.length > shown.length && text.startsWith(shown)) io.stdout(text.slice(shown.length));
        io.stdout('\n');
        const seconds = (performance.now() - t0) / 1000;
        io.stderr(`${ids.length} tokens in ${duration(seconds)} (${fmt(ids.length / Math.max(seconds, 1e-3), 1)} tokens/s)${ids.at(-1) === tokenizer.endOfDocument ? '; stopped at the end of a document' : ''}\n`);
      }
      model.dispose();
      result.exitCode = 0;
    });
}

const budget = (value: string) => {
  try {
    return parseBudget(value);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
};

export function exportCommand(program: Command, io: CliIo, result: CommandResult): void {
  program
    .command('export')
    .description(
      'Write a trained model as a tfjs-layers model folder (model.json + weights, tokenizer, DNA, README), to load with @primer-search/layers in Node or a browser: ' +
        'from a training checkpoint (primer train --checkpoint), or a candidate of a study (retrained with the study\'s settings: a study keeps programs and results, not weights).',
    )
    .requiredOption('--out <dir>', 'the folder to write (one that holds files is refused unless --force)')
    .option('--force', 'write over the files of an --out folder that holds some')
    .option('--checkpoint <dir>', 'a checkpoint folder of primer train --checkpoint')
    .option('--model <name|file>', `with --checkpoint: the model it trained, as given to primer train (a baseline: ${baselines.names().join(', ')}; or a DNA file)`)
    .option('--heads <n>', 'with --checkpoint: --heads as given to primer train', headsFlag, 4)
    .option('--study <study>', 'a study of primer search: a file, sqlite:///path or postgres://...')
    .option('--candidate <id>', "with --study: the candidate to export: with the weights the search kept (search --keep-weights), else retrained with the study's settings", integer('--candidate', 0))
    .addOption(new Option('--budget <budget>', "with --study: retrain with this budget (default: the study's budget per candidate), even when the search kept the candidate's weights").argParser(budget))
    .addOption(new Option('--plugin <module>', "with --study: the plugins the study was run with (a file or package; repeatable; a study's own record of them is never imported)").argParser((v: string, prev: string[]) => [...prev, v]).default([], 'none'))
    .addOption(backendOption())
    .action(async (o: { out: string; force?: boolean; checkpoint?: string; model?: string; heads: number; study?: string; candidate?: number; budget?: RunSettings['budget']; backend?: string; plugin: string[] }) => {
      checkOutputFolder('--out', o.out, o.force);
      if ((o.checkpoint === undefined) === (o.study === undefined)) throw new UsageError('give --checkpoint DIR --model M, or --study STUDY --candidate ID');
      checkBackend(o.backend);
      // checked before any work, whichever source is given
      const plugins = o.plugin.map(pluginSpecifier);
      if (plugins.length > 0 && o.checkpoint !== undefined) throw new UsageError('--plugin goes with --study (a checkpoint export loads no plugins)');
      const metadata = o.checkpoint !== undefined ? await fromCheckpoint(io, o) : await fromStudy(io, { ...o, plugin: plugins });
      io.stdout(
        `exported ${metadata.name} to ${o.out}: ${fmt(metadata.parameters)} parameters, ${metadata.dataset} with ${metadata.tokenizer} tokens` +
          `${metadata.validation ? `, validation perplexity ${metadata.validation.perplexity.toFixed(3)}` : ''}\n  try: primer generate --model ${o.out} --prompt "The"\n`,
      );
      result.exitCode = 0;
    });
}

async function fromCheckpoint(io: CliIo, o: { out: string; checkpoint?: string; model?: string; heads: number; backend?: string }): Promise<ExportMetadata> {
  if (o.model === undefined) throw new UsageError('--checkpoint needs --model: the model it trained, as given to primer train');
  if (!baselines.has(o.model) && !existsSync(o.model)) throw new UsageError(`--model: no baseline or DNA file ${o.model} (baselines: ${baselines.names().join(', ')})`);
  checkPath('--checkpoint', o.checkpoint, 'folder');
  const { readCheckpoint, selectBackend, settingsFromContext } = await loadTrainer();
  const c = readCheckpoint(o.checkpoint!);
  const ctx = c.context as RunContext | undefined;
  if (!ctx?.dna) throw new UsageError(`--checkpoint: ${o.checkpoint} does not record what it trained (written by an older primer train)`);
  const dna = loadDna(io, o.model, ctx.dModel, o.heads, '--model');
  if (!dna.ok) throw new PrimerError('DNA_INVALID', dna.message);
  if (dnaHash(dna.dna) !== ctx.dna) throw new UsageError(`--model: ${o.model} (with --heads ${o.heads}) is not the model ${o.checkpoint} trained (its DNA hash is ${ctx.dna.slice(0, 12)}, this one's ${dnaHash(dna.dna).slice(0, 12)})`);
  const settings = settingsFromContext(ctx, DEFAULT_RUN_SETTINGS, c.budget, { ...c.config });

  const backend = await selectBackend(o.backend as never);
  const data = await prepareData(settings);
  const { compileLanguageModel } = await import('@primer-search/compiler');
  const model = compileLanguageModel(dna.dna, { tf: backend.tf, vocabSize: data.tokenizer.vocabSize, layers: ctx.layers, dModel: ctx.dModel, seqLen: ctx.seqLen, seed: `${ctx.seed}` as Seed });
  try {
    for (const [name, v] of model.namedVariables) {
      const saved = c.weights[name];
      if (!saved || saved.shape.join('x') !== v.shape.join('x')) throw new PrimerError('BAD_CHECKPOINT', `the checkpoint ${o.checkpoint} has no weight ${name} of shape [${v.shape.join(', ')}]`);
      backend.tf.tidy(() => v.assign(backend.tf.tensor(saved.values, saved.shape) as never));
    }
    const last = c.evaluations.at(-1);
    if (last && last.step !== c.step) io.stderr(`note: the checkpoint is at step ${c.step}; its latest validation was at step ${last.step}\n`);
    return await exportLanguageModel(o.out, model, data.tokenizer, {
      name: modelName(o.model),
      source: `primer export from the checkpoint ${o.checkpoint} (step ${c.step})`,
      settings,
      result: { steps: c.step, tokens: c.tokens, trainSeconds: c.trainSeconds, parameters: model.estimate.parameters, final: last ? { loss: last.loss, perplexity: last.perplexity } : undefined },
    });
  } finally {
    model.dispose();
  }
}

/** A candidate exported with the weights its search kept: the study's settings, no training. */
async function fromKeptWeights(io: CliIo, o: { out: string; candidate?: number; backend?: string }, config: StudyConfig, dna: Dna, kept: { bytes: Uint8Array; evaluation: EvaluationRecord }, shown: string): Promise<ExportMetadata> {
  const settings: RunSettings = { ...config.settings, backend: (o.backend as never) ?? config.settings.backend };
  const name = `candidate-${o.candidate}`;
  const tensors = new Map(decodeWeights(kept.bytes, `the weights ${shown} keeps for candidate ${o.candidate}`).map((t) => [t.name, t]));
  const { selectBackend } = await loadTrainer();
  const backend = await selectBackend(settings.backend);
  io.stderr(`exporting ${name} of ${shown} with the weights the search kept (perplexity ${kept.evaluation.fitness?.toFixed(3)}, ${fmt(kept.evaluation.steps)} steps; no retraining) · backend ${describeBackend(backend)}\n`);
  const data = await prepareData(settings);
  const { compileLanguageModel } = await import('@primer-search/compiler');
  const model = compileLanguageModel(dna, { tf: backend.tf, vocabSize: data.tokenizer.vocabSize, layers: settings.layers, dModel: settings.dModel, seqLen: settings.seqLen, seed: `${settings.seed}` as Seed });
  try {
    for (const [weight, v] of model.namedVariables) {
      const t = tensors.get(weight);
      if (!t || t.shape.join('x') !== v.shape.join('x')) throw new PrimerError('BAD_WEIGHTS', `the weights ${shown} keeps for candidate ${o.candidate} have no ${weight} of shape [${v.shape.join(', ')}]: export it with --budget to retrain it instead`);
      backend.tf.tidy(() => v.assign(backend.tf.tensor(t.values, t.shape) as never));
    }
    const e = kept.evaluation;
    return await exportLanguageModel(o.out, model, data.tokenizer, {
      name,
      source: `primer export: candidate ${o.candidate} of the study ${shown}, with the weights its search kept`,
      settings,
      result: { steps: e.steps, tokens: e.tokens, trainSeconds: e.trainSeconds, parameters: model.estimate.parameters, final: e.fitness !== null ? { loss: Math.log(e.fitness), perplexity: e.fitness } : undefined },
    });
  } finally {
    model.dispose();
  }
}

async function fromStudy(io: CliIo, o: { out: string; study?: string; candidate?: number; budget?: RunSettings['budget']; backend?: string; plugin: string[] }): Promise<ExportMetadata> {
  if (o.candidate === undefined) throw new UsageError('--study needs --candidate ID (primer study show lists them)');
  const plugins = o.plugin;
  const shown = maskUrl(o.study!);
  const store = await openForReading(o.study!);
  let config: StudyConfig;
  let dna: Dna;
  let searched: number | null | undefined;
  let kept: { bytes: Uint8Array; evaluation: EvaluationRecord } | undefined;
  try {
    config = (await store.config()) as unknown as StudyConfig;
    if (!config) throw new UsageError(`--study: ${shown} holds no study`);
    checkStudyPlugins(config, plugins, `--study ${shown}`);
    const c = await store.candidate(o.candidate);
    if (!c) throw new UsageError(`--candidate: ${shown} has no candidate ${o.candidate} (it has ${(await store.candidates()).length})`);
    dna = c.dna as Dna;
    const evaluation = await store.evaluationOf(c.hash);
    searched = evaluation?.fitness;
    // the weights the search kept (--keep-weights): exported as trained, unless another budget is asked for
    const bytes = o.budget === undefined ? await store.weightsOf(c.hash) : undefined;
    if (bytes && evaluation) {
      kept = { bytes, evaluation };
      // the weights are those of the candidate that was trained: a later candidate of the same program (another DNA, the same canonical form) is built as that one
      const trained = evaluation.candidate !== c.id ? await store.candidate(evaluation.candidate) : undefined;
      if (trained) dna = trained.dna as Dna;
    }
  } finally {
    await store.close();
  }
  if (kept) {
    await loadPlugins(plugins);
    return fromKeptWeights(io, o, config, dna, kept, shown);
  }
  await loadPlugins(plugins);
  const settings: RunSettings = { ...config.settings, budget: o.budget ?? config.settings.budget, backend: (o.backend as never) ?? config.settings.backend };
  const { runExperiment, selectBackend } = await loadTrainer();
  const backend = await selectBackend(settings.backend);
  const name = `candidate-${o.candidate}`;
  io.stderr(
    `retraining ${name} of ${shown} with the study's settings (${settings.dataset}, ${formatBudget(settings.budget)}, seed ${settings.seed})${searched != null ? `; the search measured perplexity ${searched.toFixed(3)}` : ''} · backend ${describeBackend(backend)}\n`,
  );
  const progress = trainingProgress(io, name);
  let metadata: ExportMetadata | undefined;
  try {
    const record = await runExperiment(dna, settings, {
      backend,
      plugins,
      onProgress: (e) => progress.update(e),
      onTrained: async (model, data, r) => {
        if (r.status !== 'completed') return;
        metadata = await exportLanguageModel(o.out, model, data.tokenizer, {
          name,
          source: `primer export: candidate ${o.candidate} of the study ${shown}, retrained with its settings${searched != null ? ` (the search measured perplexity ${searched.toFixed(3)})` : ''}`,
          settings,
          result: r,
        });
      },
    });
    if (!metadata) throw new PrimerError('EXPORT_FAILED', `${name} did not complete its retraining (${record.result.status}${record.result.divergence ? `: ${record.result.divergence.what} at step ${record.result.divergence.step}` : ''}); nothing exported`);
  } finally {
    progress.stop();
  }
  return metadata;
}

