import { existsSync, rmSync } from 'node:fs';
import cliProgress from 'cli-progress';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { structuredPatch } from 'diff';
import { isPrimerError, quote } from '@primer-search/core';
import { prepareData } from '@primer-search/datasets';
import { formatDna, type Dna } from '@primer-search/dna';
import {
  LocalWorkerPool,
  openQueuePool,
  deleteQueue,
  queueName,
  defaultWorkerCount,
  loadPlugins,
  runRetrain,
  runSearch,
  constrainedEstimate,
  summarizeStudy,
  RetrainArgumentError,
  type SearchEvent,
  type StudyConfig,
  type ParetoFront,
  type StudySummary,
} from '@primer-search/runner/controller';
import { strategies } from '@primer-search/search-strategies';
import { baselines } from '@primer-search/baselines';
import { PostgresStudyStore, openStudyStore, parseStudyLocation, type StudyStore } from '@primer-search/store';
import { CONSTRAINED, constraintFailure, DEFAULT_TRAIN_CONFIG, OBJECTIVES, ObjectiveError, formatBudget, parseBudget, parseConstraint, parseObjectives, pluginIdentity, scaleBudget, summarizeRetrain, type Budget, type CandidateView, type RetrainSummary } from '@primer-search/study';
import { confirmed, UsageError, type CliIo } from '../io.js';
import { checkpointFolder, checkStudyData, checkStudyPlugins, openForChange, openForReading, pluginSpecifier } from '../studies.js';
import { integer, loadDna, type CommandResult } from './dna.js';
import { collect, didYouMean, heads as headsFlag, timeBudget, workersWarning } from '../flags.js';
import { reportCommand } from './dashboard.js';
import { fidelityCommand, retrainCommand } from './retrain.js';
import { curvesCommand } from './curves.js';
import { studyAblateCommand } from './ablate.js';
import { dnaDiff, formatRetrain, formatTable, jsonText } from '../format.js';
import { noteOverBar } from '../progress.js';
import { addRunOptions, announceData, budget as budgetArg, checkRunFlags, duration, fmt, modelName, settingsOf, type RunOptions } from './train.js';

interface SearchOptions extends Omit<RunOptions, 'budget'> {
  budgetPerCandidate: Budget;
  strategy: string;
  seedModel: string;
  candidates: number;
  workers: number;
  inFlight?: number;
  study?: string;
  resume?: boolean;
  population: number;
  tournament: number;
  strategyOption: string[];
  hurdles: number[];
  hurdleMinSamples: number;
  candidateTimeout?: Budget;
  plugin: string[];
  top: number;
  dedupeBehaviour: boolean;
  keepWeights: number;
  objectives: string;
  constraint: string[];
}

const hurdleList = (value: string): number[] => {
  if (value === 'none') return [];
  const xs = value.split(',').map((x) => Number(x.trim()));
  if (xs.some((x) => !(x > 0 && x < 1))) throw new InvalidArgumentError('hurdles are fractions of the budget between 0 and 1, e.g. 0.25,0.5 (or none).');
  if (xs.some((x, i) => i > 0 && x <= xs[i - 1]!)) throw new InvalidArgumentError('hurdles must be increasing, e.g. 0.25,0.5.');
  return xs;
};
function parseStrategyOptions(pairs: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const m = /^([A-Za-z_][\w-]*)=(.*)$/.exec(pair);
    if (!m) throw new UsageError(`--strategy-option takes name=value; got ${quote(pair)}`);
    const v = m[2]!;
    out[m[1]!] = v !== '' && Number.isFinite(Number(v)) ? Number(v) : v === 'true' ? true : v === 'false' ? false : v;
  }
  return out;
}

const stamp = () => new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);

function searchDisplay(io: CliIo, total: number) {
  const state = { told: 0, running: new Set<number>(), failed: 0, best: undefined as number | undefined, seed: undefined as number | undefined };
  const t0 = performance.now();
  let toldAtStart = 0;
  const eta = () => {
    const done = state.told - toldAtStart;
    if (done <= 0 || state.told >= total) return '';
    const seconds = (((performance.now() - t0) / 1000) * (total - state.told)) / done;
    return ` · ETA ${duration(seconds)}`;
  };
  const bestText = () =>
    state.best === undefined ? '-' : `${state.best.toFixed(3)}${state.seed !== undefined ? ` (seed ${state.seed.toFixed(3)})` : ''}`;
  const bar = io.interactive
    ? new cliProgress.SingleBar(
        {
          format: 'search {bar} {value}/{total} candidates | running {running} | failed {failed} | best ppl {best} | ETA {eta_formatted}',
          stream: process.stderr,
          hideCursor: true,
          etaBuffer: 20,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const note = (text: string) => (bar ? noteOverBar(io, text) : io.stderr(`${text}\n`));
  const refresh = () => bar?.update(state.told, { running: state.running.size, failed: state.failed, best: bestText() });
  const count = (candidate: number, status: string, fitness: number | null) => {
    if (status === 'failed') state.failed++;
    if (candidate === 0 && status !== 'failed' && fitness !== null) state.seed = fitness;
    if (status === 'completed' && fitness !== null && (state.best === undefined || fitness < state.best)) state.best = fitness;
  };
  return {
    /** `earlier`: a resumed study's candidates, so that best and failed count the whole study. */
    start(told: number, earlier: CandidateView[] = []) {
      state.told = told;
      toldAtStart = told;
      for (const c of earlier) if (c.told && c.evaluation) count(c.id, c.evaluation.status, c.evaluation.fitness);
      bar?.start(total, told, { running: 0, failed: state.failed, best: bestText() });
    },
    event(e: SearchEvent) {
      if (e.type === 'dispatched') state.running.add(e.candidate);
      if (e.type === 'evaluated') state.running.delete(e.candidate);
      if (e.type === 'told') {
        state.told = e.told;
        const o = e.outcome;
        count(e.candidate, o.status, o.status === 'failed' ? null : o.fitness);
        const what =
          o.status === 'completed'
            ? `perplexity ${o.fitness.toFixed(3)}`
            : o.status === 'hurdle'
              ? `stopped at hurdle ${o.hurdle + 1} (perplexity ${o.fitness.toFixed(3)} there)`
              : `failed: ${o.reason}`;
        note(
          `[${e.told}/${total}] candidate ${e.candidate}: ${what}${e.reused ? ' (same program as an earlier candidate; result reused)' : e.sameAs ? ' (computes the same function as an earlier program; its result reused)' : ''} · ` +
            `best ${bestText()} · running ${state.running.size} · failed ${state.failed}${bar ? '' : eta()}`,
        );
      }
      refresh();
    },
    stop: () => bar?.stop(),
  };
}

/**
 * Whether candidates go through the study's queue: as the study was run, unless --workers says
 * otherwise. Only a PostgreSQL study has a queue: a queue study copied to a SQLite file continues
 * on local workers.
 */
const throughQueue = (command: Command, o: SearchOptions, active: StudyConfig, kind: 'sqlite' | 'postgres') =>
  kind === 'postgres' && (command.getOptionValueSource('workers') === 'cli' ? o.workers === 0 : active.dispatch === 'queue');

/** A word a POSIX shell reads back as it is (single-quoted when it needs to be). */
const shellWord = (w: string) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);

/** Every candidate by id, read once, for the code listings of a summary. */
async function candidateLookup(store: StudyStore): Promise<(id: number) => { dna: unknown } | undefined> {
  const byId = new Map((await store.candidates()).map((c) => [c.id, c]));
  return (id) => byId.get(id);
}

/** An objective's value as the front's table shows it. */
const objectiveCell = (name: string, v: number) => (name === 'perplexity' ? v.toFixed(3) : name === 'step_time' ? `${(v * 1000).toFixed(1)} ms` : name === 'in_context' ? v.toFixed(3) : fmt(v));

/** A Pareto search's front: the programs no other completed program beats in every objective. */
export function formatFront(f: ParetoFront): string {
  const rows = [['candidate', ...f.objectives], ...f.members.map((m) => [String(m.id), ...m.values.map((v, k) => objectiveCell(f.objectives[k]!, v))])];
  const widths = rows[0]!.map((_, k) => Math.max(...rows.map((r) => r[k]!.length)));
  return [
    `Pareto front over ${f.objectives.join(', ')}: ${f.members.length} of ${f.points.length} completed programs (no other is as good in every objective and better in one; retrain them with primer study retrain STUDY --front)`,
    ...rows.map((r) => r.map((x, k) => x.padStart(widths[k]!)).join('  ')),
  ].join('\n');
}

export interface SummaryOptions {
  /** The best N programs shown by their diff against the seed. */
  code?: number;
  /** Their whole code as well. */
  full?: boolean;
  /** How long the search that just ended took, when it is the end of one. */
  elapsedSeconds?: number;
}

export function formatSummary(s: StudySummary, candidatesOf: (id: number) => { dna: unknown } | undefined, options: SummaryOptions = {}): string {
  const { code: showCode = 1, full = false } = options;
  const c = s.config;
  const out: string[] = [];
  out.push(`study ${s.location}`);
  out.push(
    `  ${c.strategy}${Object.keys(c.strategyOptions).length ? ` (${Object.entries(c.strategyOptions).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''} from ${c.seedModel}, seed ${c.seed} · ` +
      `${c.settings.dataset}, ${formatBudget(c.settings.budget)} per candidate, ${c.settings.layers} layer${c.settings.layers === 1 ? "" : "s"}, dModel ${c.settings.dModel}, seq ${c.settings.seqLen}, batch ${c.settings.batch}`,
  );
  out.push(
    `  candidates ${s.candidates} proposed, ${s.told} told · trained ${s.trained} · reused ${s.reused} (same program as an earlier one) · ` +
      `completed ${s.completed} · failed ${s.failed} · training ${duration(s.trainSeconds)}, wall ${duration(s.wallSeconds)} (summed over workers)`,
  );
  if (c.hurdles.length) {
    out.push(
      `  hurdles at ${c.hurdles.map((f) => `${Number((f * 100).toPrecision(3))}%`).join(', ')} of the budget: stopped ${s.stoppedAtHurdle.join(' / ')} · ` +
        `saved ${s.hurdleSavings.budgets.toFixed(2)} candidate budgets (${(s.hurdleSavings.share * 100).toFixed(1)}% of full training); a candidate cost ${(1 - s.hurdleSavings.share).toFixed(2)} of the full budget on average`,
    );
  }
  if (c.objectives && c.objectives.length > 1) out.push(`  objectives: ${c.objectives.map((n) => `${n} (${OBJECTIVES[n]?.direction === 'max' ? 'higher' : 'lower'} is better)`).join(', ')}`);
  if (c.constraints?.length) out.push(`  constraints, decided before training: ${c.constraints.join(', ')}`);
  if (s.equivalent.programs) {
    out.push(`  behaviour de-duplication: ${s.equivalent.programs} program${s.equivalent.programs === 1 ? '' : 's'} computed the same function as an earlier one and reused its result (saved ${duration(s.equivalent.trainSecondsSaved)} of training)`);
  }
  if (c.keepWeights) {
    out.push(`  weights kept for the ${c.keepWeights} best: ${s.keptWeights.length ? `candidate${s.keptWeights.length === 1 ? '' : 's'} ${s.keptWeights.join(', ')} (primer export --study ... --candidate ID exports them without retraining)` : 'none yet'}`);
  }
  const reasons = Object.entries(s.failuresByReason);
  if (reasons.length) out.push(`  failures by reason: ${reasons.map(([k, n]) => `${k} ${n}`).join(', ')}`);
  if (s.machines.length) {
    const m = s.machines.map(
      (x) =>
        `${x.host} (${[x.backend ?? 'backend not recorded', x.products && `products: ${x.products}`, x.device].filter(Boolean).join(', ')}): ${x.evaluations} trained, ${x.stepsPerSecond.toFixed(1)} steps/s${x.mixedHardware ? `, ${x.mixedHardware} with --allow-mixed-hardware` : ''}`,
    );
    out.push(`  trained on ${m.join(' · ')}`);
  }
  out.push('');
  if (s.leaderboard.length === 0) {
    out.push('no candidate has completed its budget yet.');
    return `${out.join('\n')}\n`;
  }
  const seed = s.seed.fitness;
  const rows = [
    ['rank', 'candidate', 'parent', 'perplexity', 'vs seed', 'params', 'steps', 'mutations'],
    ...s.leaderboard.map((e, i) => [
      String(i + 1),
      String(e.id),
      e.parent === null ? '-' : String(e.parent),
      e.fitness.toFixed(3),
      seed && e.id !== 0 ? `${(((e.fitness - seed) / seed) * 100).toFixed(1)}%` : e.id === 0 ? 'seed' : '-',
      e.parameters === null ? '-' : fmt(e.parameters),
      fmt(e.steps),
      e.mutations.join('; ') || '-',
    ]),
  ];
  const widths = rows[0]!.map((_, k) => Math.max(...rows.map((r) => r[k]!.length)));
  out.push(rows.map((r) => r.map((x, k) => (k === r.length - 1 ? x : k === 0 || k === 1 ? x.padStart(widths[k]!) : x.padStart(widths[k]!))).join('  ')).join('\n'));
  out.push('');
  if (s.front) out.push(formatFront(s.front), '');
  out.push(`lineage of the best: ${s.bestLineage.join(' -> ')}`);
  const shown = s.leaderboard.slice(0, showCode);
  for (const e of shown) {
    if (e.id === 0) {
      out.push(`\nthe best program is the seed itself (perplexity ${e.fitness.toFixed(3)}).`);
      continue;
    }
    const dna = candidatesOf(e.id)?.dna as Dna | undefined;
    if (!dna) continue;
    const name = `candidate ${e.id}`;
    out.push(`\n${name}: perplexity ${e.fitness.toFixed(3)}${seed ? ` against the seed's ${seed.toFixed(3)} (${(((e.fitness - seed) / seed) * 100).toFixed(1)}%)` : ''}. Its code's diff against the seed's (- ${c.seedModel}, + ${name}):`);
    out.push(dnaDiff(c.seedDna, dna).trimEnd());
    if (full) {
      out.push(`\n${name} as code:\n`);
      out.push(formatDna({ ...dna, name: `candidate-${e.id}` }).trimEnd());
    }
  }
  const best = s.leaderboard[0];
  if (options.elapsedSeconds !== undefined && best && best.id !== 0 && seed) {
    const where = shellWord(parseStudyLocation(s.location).display);
    const plugins = (c.pluginIds ?? []).length ? ' --plugin MODULE (the plugins it was run with)' : '';
    out.push(
      `\nThe search found a program ${(((seed - best.fitness) / seed) * 100).toFixed(1)}% lower in perplexity than the seed in ${duration(options.elapsedSeconds)}: ` +
        `${s.told} candidates, each distinct program trained at most once, with one seed, for ${formatBudget(c.settings.budget)}. What pays at so short a budget (often a smaller model) need not pay at a longer one: ` +
        `retrain the best with several seeds and 5x the budget (primer study retrain ${where} --top ${Math.min(3, s.leaderboard.length - 1) || 1}${plugins}), or measure whether this budget orders programs as a longer one would (primer study fidelity ${where}${plugins}); their whole code: primer study show ${where} --full.`,
    );
  }
  for (const r of s.retrains) out.push(`\n${formatRetrain(r).trimEnd()}`);
  for (const f of s.fidelity) out.push(`\n${formatTable(f.table).trimEnd()}`);
  return `${out.join('\n')}\n`;
}

export function searchCommand(program: Command, io: CliIo, result: CommandResult): void {
  addRunOptions(
    program
      .command('search')
      .description(
        'Evolve Transformer blocks from a seed under a fixed training budget per candidate (fitness: validation perplexity), ' +
          'training candidates in worker processes, recording everything in a study file; a killed search continues with --resume.',
      )
      .addOption(new Option('--strategy <name>', `search strategy (${strategies.names().join(', ')}, or one a --plugin registers)`).default('evolution'))
      .option('--seed-model <name|file>', 'the program the search starts from: a baseline or a DNA file', 'vanilla')
      .option('--candidates <n>', 'candidates to propose in all, the seed included (on --resume: raise it to extend a study)', integer('--candidates', 1), 24)
      .addOption(new Option('--workers <n>', 'worker processes training candidates at once on this machine (0: none, the candidates go to primer worker processes through a PostgreSQL study\'s queue)').argParser(integer('--workers', 0)).default(defaultWorkerCount(), `${defaultWorkerCount()}, one per core`))
      .option('--in-flight <n>', 'candidates out for evaluation at once (default: --workers; with --workers 0, 2)', integer('--in-flight', 1))
      .option('--study <location>', 'where the study is recorded: a SQLite file (default: runs/search-<time>.sqlite), sqlite:///path, or postgres://user@host:5432/db?schema=name')
      .option('--resume', 'continue the study in --study where it stopped (its recorded settings are used)')
      .option('--population <n>', 'evolution and pareto: population size', integer('--population', 2), 100)
      .option('--tournament <n>', 'evolution and pareto: tournament size', integer('--tournament', 1), 10)
      .addOption(
        new Option(
          '--objectives <list>',
          `what the search optimises, comma-separated, perplexity among them (${Object.keys(OBJECTIVES).join(', ')}); more than one runs a Pareto search (strategy pareto unless --strategy names another that ranks by several)`,
        ).default('perplexity'),
      )
      .addOption(
        new Option(
          '--constraint <expr>',
          `a bound every candidate must keep, decided before training from the compiler's estimate of its blocks; a candidate that breaks it fails with the reason (repeatable; e.g. "block_parameters>=0.9*seed", "block_flops_per_token<=1.1*seed", "block_parameters<=2e6"; quantities: ${Object.keys(CONSTRAINED).join(', ')}, the blocks' alone: the embedding and softmax, the same in every program, are left out)`,
        )
          .argParser(collect)
          .default([], 'none'),
      )
      .addOption(new Option('--strategy-option <name=value>', 'an option of the strategy (repeatable; e.g. maxMutations=2 for random)').argParser(collect).default([], 'none'))
      .addOption(new Option('--hurdles <fractions>', 'fractions of the budget where candidates worse than the median so far stop (or none)').argParser(hurdleList).default([0.25, 0.5], '0.25,0.5'))
      .option('--hurdle-min-samples <n>', 'results needed at a hurdle before it stops anyone', integer('--hurdle-min-samples', 1), 5)
      .addOption(new Option('--candidate-timeout <time>', 'stop a candidate after this long (default: twice a time budget plus a minute, or 20m)').argParser(timeBudget))
      .addOption(new Option('--plugin <module>', 'import this module first (a file or package registering primitives or strategies; repeatable)').argParser(collect).default([], 'none'))
      .option('--keep-weights <k>', 'keep the trained weights of the K best completed candidates in the study (primer export uses them instead of retraining)', integer('--keep-weights', 0, 1000), 0)
      .option('--top <n>', 'leaderboard rows in the summary', integer('--top', 1), 10)
      .option(
        '--no-dedupe-behaviour',
        'train every distinct program, even one computing the same function as a program evaluated before (by default its outputs on a fixed random input with fixed random weights are compared first, and an equivalent reuses the result)',
      ),
    '30s',
    '--budget-per-candidate',
    'training budget per candidate',
    // the workers already use every core
    { default: 1, help: '1: the workers use the cores' },
  ).action(async (o: SearchOptions, command: Command) => {
    // on --resume, --candidates only counts when given (to extend the study)
    const moreCandidates = command.getOptionValueSource('candidates') === 'cli' ? o.candidates : undefined;
    if (o.resume && !o.study) throw new UsageError('--resume needs --study FILE');
    if (o.resume && command.getOptionValueSource('keepWeights') === 'cli') throw new UsageError('--keep-weights is set when a study starts (its record says how many it keeps); it cannot be changed on --resume');
    const parsed = <T>(flag: string, f: () => T): T => {
      try {
        return f();
      } catch (e) {
        if (!(e instanceof ObjectiveError)) throw e;
        throw new UsageError(`${flag}: ${e.message}`);
      }
    };
    const objectives = parsed('--objectives', () => parseObjectives(o.objectives));
    const constraints = parsed('--constraint', () => o.constraint.map((c) => parseConstraint(c).text));
    // several objectives: the Pareto strategy, unless another that ranks by several is named
    if (objectives.length > 1 && command.getOptionValueSource('strategy') !== 'cli') o.strategy = 'pareto';
    // hurdles stop by perplexity alone: in a Pareto search they would cut the front's cheap end, so they are off unless asked for
    if (objectives.length > 1 && !o.resume) {
      if (command.getOptionValueSource('hurdles') !== 'cli') o.hurdles = [];
      else if (o.hurdles.length) io.stderr('warning: --hurdles stop candidates by perplexity alone; in a Pareto search they may stop programs that trade perplexity for the other objectives before the front sees them\n');
    }
    const plugins = o.plugin.map(pluginSpecifier);
    await loadPlugins(plugins);
    if (!o.resume) checkRunFlags(o);
    const tooMany = workersWarning(o.workers);
    const inFlight = o.inFlight ?? (o.workers > 0 ? o.workers : 2);
    if (tooMany) io.stderr(`${tooMany}\n`);
    const studyPath = o.study ?? `runs/search-${stamp()}.sqlite`;
    const where = parseStudyLocation(studyPath);
    if (o.workers === 0 && where.kind !== 'postgres') throw new UsageError('--workers 0 sends candidates to primer worker processes through a queue in PostgreSQL: give --study postgres://...');
    // what is printed: a PostgreSQL URL with its password masked
    const shown = where.display;
    let config: StudyConfig | undefined;
    if (!o.resume) {
      if (where.kind === 'sqlite' && existsSync(where.target)) throw new UsageError(`${studyPath} already exists: add --resume to continue that study, or choose another --study file`);
      if (!strategies.has(o.strategy)) {
        throw new UsageError(`--strategy: no search strategy ${quote(o.strategy)}${didYouMean(o.strategy, strategies.names())}; known: ${strategies.names().join(', ')}`);
      }
      if (objectives.includes('recall') && o.dataset !== 'mqar') throw new UsageError('--objectives: recall is measured on the mqar dataset only (add --dataset mqar)');
      if (objectives.length > 1 && !strategies.get(o.strategy).multiObjective) {
        const several = strategies.names().filter((n) => strategies.get(n).multiObjective);
        throw new UsageError(`--objectives ${objectives.join(',')}: --strategy ${o.strategy} ranks by perplexity alone; leave --strategy out, or name one that ranks by several objectives (${several.join(', ')})`);
      }
      const seed = loadDna(io, o.seedModel, o.dModel, o.heads, '--seed-model');
      if (!seed.ok) {
        io.stderr(`${seed.message}\n`);
        result.exitCode = 1;
        return;
      }
      const strategyOptions = {
        ...(o.strategy === 'evolution' || o.strategy === 'pareto' ? { populationSize: o.population, tournamentSize: o.tournament } : {}),
        ...parseStrategyOptions(o.strategyOption),
      };
      // fail now, not in the first worker, on options the strategy refuses: a flag's fault (exit 2)
      try {
        strategies.get(o.strategy).create({ seedDna: seed.dna, seed: o.seed, options: strategyOptions });
      } catch (e) {
        if (!isPrimerError(e)) throw e;
        const flag = (o.strategy === 'evolution' || o.strategy === 'pareto') && /populationSize|tournamentSize/.test(e.message) ? '--population/--tournament' : '--strategy-option';
        throw new UsageError(`${flag}: ${e.message}`);
      }
      if (constraints.length) {
        const own = constrainedEstimate(seed.dna, o);
        const broken = own && constraintFailure(constraints.map(parseConstraint), own, own);
        if (broken) throw new UsageError(`--constraint: the seed (${o.seedModel}) itself breaks it: ${broken.replace(/^constraint: /, '')}`);
      }
      const budget = o.budgetPerCandidate;
      config = {
        format: 'primer-study',
        version: 1,
        strategy: o.strategy,
        strategyOptions,
        seedModel: o.seedModel,
        seedDna: seed.dna,
        seed: o.seed,
        candidates: o.candidates,
        inFlight,
        dispatch: o.workers === 0 ? 'queue' : 'local',
        hurdles: o.hurdles,
        hurdleMinSamples: o.hurdleMinSamples,
        dedupeBehaviour: o.dedupeBehaviour,
        ...(objectives.length > 1 ? { objectives } : {}),
        ...(constraints.length ? { constraints } : {}),
        ...(o.keepWeights ? { keepWeights: o.keepWeights } : {}),
        settings: settingsOf({ ...o, budget }, DEFAULT_TRAIN_CONFIG.checkpoints),
        plugins,
        pluginIds: plugins.map((p) => pluginIdentity(p)),
        candidateTimeoutSeconds:
          o.candidateTimeout?.kind === 'seconds' ? o.candidateTimeout.seconds : budget.kind === 'seconds' ? budget.seconds * 2 + 60 : 20 * 60,
      };
    }
    if (o.resume && where.kind === 'sqlite' && !existsSync(where.target)) throw new UsageError(`no study file at ${studyPath} to resume`);
    const store = await openStudyStore(studyPath, { readonly: false, mustExist: o.resume });
    const created = !o.resume && where.kind === 'sqlite';
    if (!o.resume && (await store.config())) {
      await store.close();
      throw new UsageError(`${shown} already holds a study: add --resume to continue it, or choose another --study (e.g. another ?schema=)`);
    }
    try {
      const stored = (await store.config()) as StudyConfig | undefined;
      if (o.resume && !stored) throw new UsageError(`${shown} holds no study to resume`);
      const active = stored ?? config!;
      // the study's record of its plugins is checked, never imported: the code is the command line's
      if (o.resume) {
        checkStudyPlugins(active, plugins, shown);
        // what a study optimises and the bounds it keeps are fixed when it starts
        const same = (a: string[], b: string[]) => a.join(',') === b.join(',');
        const recorded = active.objectives ?? ['perplexity'];
        if (command.getOptionValueSource('objectives') === 'cli' && !same(objectives, recorded)) {
          throw new UsageError(`--objectives ${objectives.join(',')}: ${shown} was started with ${recorded.join(',')}; a study's objectives cannot change on --resume (start a new study)`);
        }
        if (command.getOptionValueSource('constraint') === 'cli' && !same(constraints, active.constraints ?? [])) {
          throw new UsageError(`--constraint: ${shown} was started with ${active.constraints?.length ? active.constraints.join(' and ') : 'no constraints'}; a study's constraints cannot change on --resume (start a new study)`);
        }
      }
      // one controller per study, refused before any data is prepared (held until the store closes)
      await store.lockController();
      // the controller trains nothing and loads no TensorFlow.js: each worker picks its backend and records it
      const backend = active.settings.backend ?? 'chosen by each worker (recorded with its results)';
      if (!o.json) {
        io.stderr(
          `${o.resume ? 'resuming' : 'starting'} study ${shown}: ${active.strategy} from ${active.seedModel}, ${Math.max(active.candidates, moreCandidates ?? 0)} candidates, ` +
            `${formatBudget(active.settings.budget)} each, ${!throughQueue(command, o, active, where.kind) ? `${o.workers} worker${o.workers > 1 ? 's' : ''}${active.dispatch === 'queue' && where.kind === 'sqlite' ? ' (the study went through a PostgreSQL queue; this SQLite copy continues on local workers)' : ''}` : `${active.inFlight} at a time through the queue ${queueName(studyPath)} (start primer worker --study ... on any machine)`} · backend ${backend}\n`,
        );
        await announceData(io, active.settings);
      } else {
        // prepared here, once, before the workers start (they would each build a first-use cache)
        await prepareData(active.settings);
      }
      // the data it began with, recorded in a new study, checked on a resume
      const data = await checkStudyData(store, stored, active.settings, shown);
      if (!stored) config = { ...config!, data };
      // a resumed study goes on as it was run, unless --workers says otherwise
      const viaQueue = throughQueue(command, o, active, where.kind);
      const total = Math.max(active.candidates, moreCandidates ?? 0);
      const display = o.json ? undefined : searchDisplay(io, total);
      // a resumed study's best and failures so far, for the progress lines
      const earlier = display && o.resume ? await store.candidates() : [];
      const stop = new AbortController();
      const started = performance.now();
      let queue: Awaited<ReturnType<typeof openQueuePool>> | undefined;
      const onSigint = () => {
        if (stop.signal.aborted) process.exit(130);
        io.stderr(`\nstopping: finished results are saved in ${shown}; continue with --study ${shown} --resume (Ctrl-C again to quit at once)\n`);
        stop.abort();
      };
      process.on('SIGINT', onSigint);
      let outcome: Awaited<ReturnType<typeof runSearch>>;
      try {
        // woken when a worker reports an outcome, rather than waiting out a polling interval
        if (viaQueue) queue = await openQueuePool(studyPath, active.inFlight);
        outcome = await runSearch({
          store,
          config,
          resume: o.resume,
          candidates: moreCandidates,
          plugins,
          pool: queue?.pool ?? new LocalWorkerPool(o.workers),
          signal: stop.signal,
          onEvent: (e) => {
            if (e.type === 'started') display?.start(e.told, earlier);
            display?.event(e);
          },
        });
      } finally {
        process.off('SIGINT', onSigint);
        display?.stop();
        await queue?.stop();
      }
      const summary = await summarizeStudy(store, o.top);
      if (o.out) io.writeFile(o.out, jsonText(summary));
      if (o.json) io.stdout(jsonText(summary));
      else io.stdout(`\n${formatSummary(summary, await candidateLookup(store), { elapsedSeconds: o.resume ? undefined : (performance.now() - started) / 1000 })}`);
      if (outcome.stopped) {
        io.stderr(`stopped; continue with: primer search --study ${shown} --resume\n`);
        result.exitCode = 130;
      }
    } finally {
      // a new study file that never got its study (refused or failed before the search began) is not left behind
      let empty = false;
      try {
        empty = created && (await store.config()) === undefined;
      } catch {
        // a damaged file is the user's to look at
      }
      if (!o.resume && store instanceof PostgresStudyStore) await store.discardIfEmpty().catch(() => false);
      await store.close();
      if (empty) for (const f of [where.target, `${where.target}-wal`, `${where.target}-shm`]) rmSync(f, { force: true });
    }
  });
}

export function studyCommand(program: Command, io: CliIo, result: CommandResult = { exitCode: 0 }): void {
  const study = program
    .command('study')
    .description('Inspect, retrain, report on, copy or delete a study written by primer search: a SQLite file (a path or sqlite:///path) or a PostgreSQL schema (postgres://user@host:5432/db?schema=name).');
  study
    .command('show')
    .description('Print a study: leaderboard, lineage of the best, failures by reason, hurdle savings, and the best program with its diff against the seed.')
    .argument('<study>', 'the study: a file, sqlite:///path or postgres://...')
    .option('--json', 'print the summary as JSON')
    .option('--top <n>', 'leaderboard rows', integer('--top', 1), 10)
    .option('--code <n>', 'show the best N programs by their diff against the seed', integer('--code', 0), 1)
    .option('--full', 'print those programs\' whole code as well')
    .option('--against <program>', "measure each retraining that holds this program (e.g. primer-ez, or 'candidate N') against it instead of the seed, as primer study retrain --against does", (v: string) => {
      if (v.trim() === '') throw new InvalidArgumentError('--against: give a program of a retraining, e.g. primer-ez or "candidate 12"');
      return v;
    })
    .action(async (file: string, o: { json?: boolean; top: number; code: number; full?: boolean; against?: string }) => {
      const store = await openForReading(file);
      try {
        const s = await summarizeStudy(store, o.top, undefined, o.against);
        if (o.against !== undefined && !s.retrains.some((r) => r.reference === o.against)) {
          const labels = [...new Set(s.retrains.flatMap((r) => r.rows.map((x) => x.label)))];
          throw new UsageError(`--against: no retraining of ${parseStudyLocation(file).display} holds ${quote(o.against)}${labels.length ? ` (its programs: ${labels.join(', ')})` : ' (it has no retraining)'}`);
        }
        io.stdout(o.json ? jsonText(s) : formatSummary(s, await candidateLookup(store), { code: o.code, full: o.full }));
      } finally {
        await store.close();
      }
    });

  study
    .command('dna')
    .description('Print the DNA of one candidate of a study as JSON (to train it with primer train or compare it with primer compare).')
    .argument('<study>', 'the study: a file, sqlite:///path or postgres://...')
    .argument('<candidate>', 'the candidate id', integer('candidate', 0))
    .option('--out <file>', 'write it to this file instead')
    .action(async (file: string, id: number, o: { out?: string }) => {
      const store = await openForReading(file);
      try {
        const c = await store.candidate(id);
        if (!c) throw new UsageError(`${file} has no candidate ${id} (it has ${(await store.candidates()).length})`);
        const text = jsonText({ ...(c.dna as Dna), name: `candidate-${id}` });
        if (o.out) io.writeFile(o.out, text);
        else io.stdout(text);
      } finally {
        await store.close();
      }
    });

  retrainCommand(study, io, result);

  fidelityCommand(study, io, result);

  studyAblateCommand(study, io);

  curvesCommand(study, io);

  deleteCommand(study, io);

  reportCommand(study, io, result);

  study
    .command('copy')
    .description('Copy a whole study (configuration, candidates, evaluations and strategy snapshots, verbatim) to another store: between SQLite and PostgreSQL either way.')
    .argument('<from>', 'the study to copy: a file, sqlite:///path or postgres://...')
    .argument('<to>', 'where to put it: a new file, or a PostgreSQL schema that holds no study')
    .action(async (from: string, to: string) => {
      const source = await openForReading(from);
      try {
        const dump = await source.dump();
        const target = parseStudyLocation(to);
        if (target.kind === 'sqlite' && existsSync(target.target)) throw new UsageError(`${to} already exists: copy to a new file`);
        const dest = await openStudyStore(to);
        try {
          await dest.restore(dump);
        } catch (e) {
          if (dest instanceof PostgresStudyStore) await dest.discardIfEmpty().catch(() => false);
          await dest.close();
          // a new file that did not get the study is not left behind
          if (target.kind === 'sqlite') for (const f of [target.target, `${target.target}-wal`, `${target.target}-shm`]) rmSync(f, { force: true });
          throw e;
        }
        await dest.close();
        io.stderr(`copied ${parseStudyLocation(from).display} to ${target.display}: ${dump.candidates.length} candidates, ${dump.evaluations.length} evaluations, ${dump.snapshots.length} strategy snapshots\n`);
      } finally {
        await source.close();
      }
    });
}

/** primer study delete STUDY: the whole study (a SQLite file and the files beside it, or a PostgreSQL schema's study and queue), after a confirmation. */
function deleteCommand(study: Command, io: CliIo): void {
  study
    .command('delete')
    .description("Delete a whole study: a SQLite file with the files beside it, or a PostgreSQL schema's study tables (the schema too when nothing else is left in it) and its queue's jobs. Asks first unless --yes; refused while a search or a retraining runs it.")
    .argument('<study>', 'the study: a file, sqlite:///path or postgres://...')
    .option('--yes', 'do not ask')
    .action(async (location: string, o: { yes?: boolean }) => {
      const where = parseStudyLocation(location);
      const { store, config } = await openForChange(location);
      let deleted = false;
      try {
        await store.lockController();
        const candidates = (await store.candidates()).length;
        const retrains = (await store.retrains()).length;
        const what = `${config.strategy} from ${config.seedModel}: ${candidates} candidate${candidates === 1 ? '' : 's'}, ${retrains} retraining${retrains === 1 ? '' : 's'}`;
        if (!(await confirmed(io, `delete the study ${where.display} (${what})? This cannot be undone`, o.yes))) {
          io.stderr('nothing deleted\n');
          return;
        }
        // the queue first: if that fails, the study is still there to delete again
        if (where.kind === 'postgres') await deleteQueue(location);
        await store.deleteStudy();
        deleted = true;
        io.stderr(`deleted the study ${where.display} (${what})\n`);
      } finally {
        await store.close();
        // (the empty -lock file beside it stays: removing a lock file lets two processes lock two files)
        if (deleted && where.kind === 'sqlite') for (const f of [where.target, `${where.target}-wal`, `${where.target}-shm`]) rmSync(f, { force: true });
        // and the checkpoints its retrainings' unfinished runs left on this machine
        const checkpoints = deleted ? checkpointFolder(where, config) : undefined;
        if (checkpoints) rmSync(checkpoints, { recursive: true, force: true });
      }
    });
}
