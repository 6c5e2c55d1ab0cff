// primer ablate and primer study ablate: what a trained program's parts carry.
import { Option, type Command } from 'commander';
import type { Dna } from '@primer-search/dna';
import { evaluationBatches } from '@primer-search/datasets';
import { describeBackend, formatBudget, seedStatistics, type Budget, type RunSettings, type SeedStatistics, type StudyConfig } from '@primer-search/study';
import { UsageError, type CliIo } from '../io.js';
import { checkStudyPlugins, openForReading, pluginSpecifier } from '../studies.js';
import { collect } from '../flags.js';
import { PrimerError } from '@primer-search/core';
import { loadPlugins } from '@primer-search/runner/controller';
import { loadTrainer } from '../trainer.js';
import { integer, loadDna, type CommandResult } from './dna.js';
import { addRunOptions, announceData, budget as budgetArg, checkRunFlags, settingsOf, type RunOptions } from './train.js';
import { trainingProgress } from '../progress.js';
import { alignColumns, jsonText } from '../format.js';
import type { ModelAblation } from '@primer-search/trainer-gpu';

/** One instruction's ablation over the seeds: the loss it adds when replaced (nats). */
export interface AblationSummaryRow {
  node: number;
  label: string;
  /** Loss with it replaced by its input, minus the trained loss (absent: its widths differ, see `identityRefused`). */
  identity?: SeedStatistics;
  identityRefused?: string;
  /** Loss with its output replaced by zeros, minus the trained loss. */
  zeros: SeedStatistics;
}

export interface AblationSummary {
  model: string;
  budget: string;
  seeds: number[];
  /** The trained models' validation loss, nothing replaced. */
  loss: SeedStatistics;
  /** Their in-context score (first eighth's loss minus the last eighth's), nothing replaced. */
  inContext: SeedStatistics;
  rows: AblationSummaryRow[];
  /** Per seed, as measured. */
  runs: Array<{ seed: number; ablation: ModelAblation }>;
}

/** The ablations of one program trained with several seeds, as loss differences with their spread. */
export function summarizeAblation(model: string, budget: string, runs: Array<{ seed: number; ablation: ModelAblation }>): AblationSummary {
  const first = runs[0]!.ablation;
  const rows = first.rows.map((r, k): AblationSummaryRow => {
    const refused = typeof r.identity === 'object' ? r.identity.refused : undefined;
    const delta = (pick: (x: ModelAblation['rows'][number]) => number) => seedStatistics(runs.map((x) => pick(x.ablation.rows[k]!) - x.ablation.loss));
    return {
      node: r.node,
      label: r.label,
      ...(refused ? { identityRefused: refused } : { identity: delta((x) => x.identity as number) }),
      zeros: delta((x) => x.zeros),
    };
  });
  return { model, budget, seeds: runs.map((r) => r.seed), loss: seedStatistics(runs.map((r) => r.ablation.loss)), inContext: seedStatistics(runs.map((r) => r.ablation.inContext)), rows, runs };
}

const signed = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(3)}`;
const cell = (s: SeedStatistics | undefined, many: boolean) => (s ? `${signed(s.mean)}${many ? ` ± ${s.sd.toFixed(3)}` : ''}` : '-');

export function formatAblation(s: AblationSummary): string {
  const many = s.seeds.length > 1;
  const rows = [
    ['instruction of the main subprogram', 'replaced by its input', 'replaced by zeros'],
    ...s.rows.map((r) => [r.label, r.identityRefused ? 'n/a (widths differ)' : cell(r.identity, many), cell(r.zeros, many)]),
  ];
  // the subprogram call the loss depends on most (a call is a part, such as attention; an op may be the block's own sum)
  const calls = s.rows.filter((r) => / = CALL /.test(r.label));
  const largest = [...(calls.length ? calls : s.rows)].sort((a, b) => b.zeros.mean - a.zeros.mean)[0];
  return [
    `ablation of ${s.model} · ${s.budget} per run · seed${many ? 's' : ''} ${s.seeds.join(', ')} · validation loss as trained ${s.loss.mean.toFixed(3)}${many ? ` ± ${s.loss.sd.toFixed(3)}` : ''} nats · in-context score ${s.inContext.mean.toFixed(3)}${many ? ` ± ${s.inContext.sd.toFixed(3)}` : ''}`,
    alignColumns(rows),
    `Δ loss: the validation loss with the instruction replaced in every layer, the weights as trained, minus the loss as trained (nats${many ? ', mean ± sd over the seeds' : ''}). A large Δ: the model's loss depends on that part.`,
    ...(largest ? [`the ${calls.length ? 'call' : 'instruction'} whose removal costs most: ${largest.label} (replaced by zeros: ${signed(largest.zeros.mean)} nats).`] : []),
  ].join('\n') + '\n';
}

/** Trains `dna` once per seed and ablates each trained model. */
async function ablateProgram(io: CliIo, dna: Dna, settings: RunSettings, seeds: number[], label: string, json: boolean | undefined, backendChoice: RunSettings['backend']): Promise<AblationSummary> {
  const { runExperiment, selectBackend, ablateModel } = await loadTrainer();
  const backend = await selectBackend(backendChoice);
  if (!json) {
    io.stderr(`backend: ${describeBackend(backend)} · ${formatBudget(settings.budget)} per run · ${seeds.length} seed${seeds.length === 1 ? '' : 's'} (${seeds.join(', ')})\n`);
    await announceData(io, settings);
  }
  const runs: Array<{ seed: number; ablation: ModelAblation }> = [];
  for (const seed of seeds) {
    const progress = json ? undefined : trainingProgress(io, `${label} seed ${seed}`);
    let ablation: ModelAblation | undefined;
    try {
      const record = await runExperiment(dna, { ...settings, seed }, {
        backend,
        onProgress: (e) => progress?.update(e),
        onTrained: async (model, data, r) => {
          if (r.status !== 'completed') return;
          progress?.note(`  seed ${seed}: trained (perplexity ${r.final?.perplexity.toFixed(3)}); ablating ${model.blocks[0]!.plan.root.nodes.length} instructions...`);
          ablation = await ablateModel(model, evaluationBatches(data.validation, settings.batch, settings.seqLen, settings.evalWindows));
        },
      });
      if (!ablation) throw new PrimerError('ABLATION', `${label} did not complete its training at seed ${seed} (${record.result.status}${record.result.divergence ? `: ${record.result.divergence.what} stopped being finite at step ${record.result.divergence.step}` : ''}): nothing to ablate`);
    } finally {
      progress?.stop();
    }
    runs.push({ seed, ablation });
  }
  return summarizeAblation(label, formatBudget(settings.budget), runs);
}

export function ablateCommand(program: Command, io: CliIo, result: CommandResult): void {
  addRunOptions(
    program
      .command('ablate')
      .description(
        "Train a model with each seed, then measure what its parts carry: the validation loss when each instruction of the block's main subprogram (each subprogram call, e.g. attention or the feed-forward network, and each op) is replaced, in every layer, by its input or by zeros, one at a time, the weights as trained.",
      )
      .requiredOption('--model <name|file>', 'a baseline or a DNA file')
      .option('--seeds <n>', 'train and ablate with this many seeds (--seed, --seed+1, ...)', integer('--seeds', 1, 100), 1),
    '300steps',
    '--budget',
    'training budget per seed',
  ).action(async (o: RunOptions & { model: string; seeds: number }) => {
    checkRunFlags(o);
    const dna = loadDna(io, o.model, o.dModel, o.heads, '--model');
    if (!dna.ok) {
      io.stderr(`${dna.message}\n`);
      result.exitCode = 1;
      return;
    }
    const seeds = Array.from({ length: o.seeds }, (_, k) => o.seed + k);
    const s = await ablateProgram(io, dna.dna, settingsOf(o, []), seeds, o.model, o.json, o.backend);
    io.stdout(o.json ? jsonText(s) : formatAblation(s));
  });
}

export function studyAblateCommand(study: Command, io: CliIo): void {
  study
    .command('ablate')
    .description("Train one of a study's candidates with the study's settings (and each seed), then measure what its parts carry, as primer ablate does.")
    .argument('<study>', 'the study: a file, sqlite:///path or postgres://...')
    .argument('<candidate>', 'the candidate id', integer('candidate', 0))
    .addOption(new Option('--budget <budget>', "training budget per seed (default: the search's budget per candidate)").argParser(budgetArg))
    .option('--seeds <n>', "train and ablate with this many seeds (the study's seed, +1, ...)", integer('--seeds', 1, 100), 1)
    .option('--json', 'print the ablation as JSON')
    .addOption(new Option('--plugin <module>', "import this module first: the plugins the study was run with (a file or package; repeatable; a study's own record of them is never imported)").argParser(collect).default([], 'none'))
    .action(async (location: string, id: number, o: { budget?: Budget; seeds: number; json?: boolean; plugin: string[] }) => {
      const plugins = o.plugin.map(pluginSpecifier);
      await loadPlugins(plugins);
      const store = await openForReading(location);
      let config: StudyConfig;
      let dna: Dna;
      try {
        const stored = (await store.config()) as unknown as StudyConfig | undefined;
        if (!stored) throw new UsageError(`${location} holds no study`);
        config = stored;
        const c = await store.candidate(id);
        if (!c) throw new UsageError(`${location} has no candidate ${id} (it has ${(await store.candidates()).length})`);
        dna = c.dna as Dna;
        checkStudyPlugins(config, plugins, location);
      } finally {
        await store.close();
      }
      const settings: RunSettings = { ...config.settings, budget: o.budget ?? config.settings.budget, train: { ...config.settings.train, checkpoints: [] } };
      const seeds = Array.from({ length: o.seeds }, (_, k) => config.settings.seed + k);
      const s = await ablateProgram(io, dna, settings, seeds, id === 0 ? `the seed (${config.seedModel})` : `candidate ${id}`, o.json, config.settings.backend);
      io.stdout(o.json ? jsonText(s) : formatAblation(s));
    });
}
