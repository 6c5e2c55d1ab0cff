import { existsSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { quote } from '@primer-search/core';
import { prepareData } from '@primer-search/datasets';
import type { Dna } from '@primer-search/dna';
import { LocalWorkerPool, openQueuePool, defaultWorkerCount, dropRetrainCheckpoints, loadPlugins, runRetrain, RetrainArgumentError, type ReuseSource } from '@primer-search/runner/controller';
import { baselines } from '@primer-search/baselines';
import { parseStudyLocation } from '@primer-search/store';
import { scaleBudget, summarizeFidelity, summarizeRetrain, type Budget, type StudyConfig } from '@primer-search/study';
import { confirmed, UsageError, type CliIo } from '../io.js';
import { checkpointFolder, checkStudyData, checkStudyPlugins, openForChange, openForReading, pluginSpecifier } from '../studies.js';
import { integer, loadDna, type CommandResult } from './dna.js';
import { checkpointEvery, collect, didYouMean, heads as headsFlag, positiveNumber, timeBudget, workersWarning } from '../flags.js';

import { announceData, budget as budgetArg, duration, fmt, modelName } from './train.js';
import { dnaDiff, formatRetrain, formatTable, jsonText } from '../format.js';

interface RetrainOptions {
  delete?: number;
  /** primer study fidelity: programs to sample, and the budget as a multiple of the search's. */
  sample?: number;
  /** primer study retrain --front: the Pareto front instead of the best. */
  front?: boolean;
  factor?: number;
  yes?: boolean;
  top: number;
  budget?: Budget;
  seeds: number;
  workers: number;
  inFlight?: number;
  baselines: string;
  heads: number;
  runTimeout?: Budget;
  against: string;
  plugin: string[];
  reuseFrom: string[];
  checkpointEvery: number | false;
  json?: boolean;
  /** primer study fidelity with none of the options that choose a measurement (--sample, --budget, --factor, --seeds). */
  bare?: boolean;
}

/** primer study retrain STUDY --delete N: one retraining and its runs, after a confirmation. */
async function deleteRetraining(io: CliIo, location: string, id: number, yes: boolean | undefined): Promise<void> {
  const { store, shown } = await openForChange(location);
  try {
    // not while a search or a retraining runs the study
    await store.lockController();
    const plans = await store.retrains();
    const plan = plans.find((p) => p.id === id);
    if (!plan) throw new UsageError(`--delete: ${shown} has no retraining ${id}${plans.length ? ` (it has ${plans.map((p) => p.id).join(', ')})` : ' (it has none)'}`);
    const runs = (await store.retrainRuns(id)).length;
    if (
      !(await confirmed(io, `delete retraining ${id} of ${shown} (${plan.programs.map((p) => p.label).join(', ')} · ${plan.budget} · seeds ${plan.seeds.join(', ')} · ${runs} runs recorded)?`, yes))
    ) {
      io.stderr('nothing deleted\n');
      return;
    }
    const deleted = await store.deleteRetrain(id);
    const folder = checkpointFolder(parseStudyLocation(location), (await store.config()) as StudyConfig | undefined);
    if (folder) dropRetrainCheckpoints(folder, id);
    io.stderr(`deleted retraining ${id} of ${shown} and its ${deleted} run${deleted === 1 ? '' : 's'}\n`);
  } finally {
    await store.close();
  }
}

export function retrainCommand(study: Command, io: CliIo, result: CommandResult): void {
  addRunPlanOptions(
    study
      .command('retrain')
      .description(
        'Retrain the best programs of a study, and its seed, with a longer budget and several seeds, as the paper did. The retraining is recorded in the study beside the search, ' +
          'and running the same command again continues it (a run stopped part-way from its last checkpoint: --checkpoint-every); a run that another retraining already made (same settings, program and seed) is reused, not trained again. ' +
          "Prints each program's final perplexity (mean ± sd over the seeds), its speedup over the seed (or --against), its perplexity difference with a verdict (from 3 seeds), and which program won. " +
          '--delete ID deletes a retraining instead.'
      )
      .argument('<study>', 'the study: a file, sqlite:///path or postgres://...')
      .option('--delete <id>', 'delete retraining <id> of the study (its plan and runs) instead of retraining; asks first unless --yes', integer('--delete', 1))
      .option('--yes', 'with --delete: do not ask')
      .option('--top <n>', 'the best distinct programs to retrain besides the seed (by search perplexity)', integer('--top', 0, 998), 5)
      .addOption(new Option('--front', "instead of the best: the programs of a Pareto search's front (primer search --objectives ...), besides the seed").conflicts('top'))
      .addOption(new Option('--budget <budget>', "training budget per run: time, steps, tokens or FLOPs, as for primer search (default: 5x the search's budget per candidate)").argParser(budgetArg))
      .option('--seeds <n>', "seeds per program: the study's seed, +1, +2, ... (weights and batches)", integer('--seeds', 1, 100), 3)
    .addOption(
      new Option(
        '--baselines <list>',
        'reference models to train beside them (comma-separated baselines or DNA files, e.g. primer-ez); speedups are against the seed unless --against names one'
      ).default('', 'none')
    )
    .option('--against <program>', "measure speedups and verdicts against this program instead of the seed: one of --baselines (e.g. primer-ez) or 'candidate N'", 'seed')
    .option('--heads <n>', 'attention heads of those baselines (1, 2, 4 or 8)', headsFlag, 4)
  )
    .option('--json', 'print the retraining summary as JSON')
    .action(async (location: string, o: RetrainOptions, command: Command) => {
      if (o.delete !== undefined) {
        const others = command.options.filter((x) => !['delete', 'yes'].includes(x.attributeName()) && command.getOptionValueSource(x.attributeName()) === 'cli');
        if (others.length) throw new UsageError(`--delete deletes a retraining; it takes no ${others.map((x) => x.long).join(', ')}`);
        await deleteRetraining(io, location, o.delete, o.yes);
        return;
      }
      if (o.yes) throw new UsageError('--yes goes with --delete');
      await retrainStudy(io, result, location, o, false);
    });
}

export function fidelityCommand(study: Command, io: CliIo, result: CommandResult): void {
  addRunPlanOptions(
    study
      .command('fidelity')
      .description(
        "Measure how faithfully the search's fitness predicts a longer run's: retrain a sample of the study's distinct programs that completed the search's budget, spread over its range of " +
          'search perplexity (the seed and the best always among them), at a longer budget and with several seeds; then report Spearman\'s rank correlation between search and retrained ' +
          "perplexity with a bootstrap 95% interval, Kendall's tau, how many of the search's top 5 and top 10 stay on top, how well the longer run agrees with itself across seeds, and the " +
          'programs whose rank moved most. Recorded in the study like a retraining (the dashboard draws it as a scatter); running the same command again continues it, and runs another ' +
          'retraining made with the same settings are reused; primer study show prints it (given none of --sample, --budget, --factor, --seeds on a study that has a measurement, ' +
          'this command says so rather than start another). primer study retrain STUDY --delete ID deletes one.',
      )
      .argument('<study>', 'the study: a file, sqlite:///path or postgres://...')
      .option('--sample <n>', 'distinct programs to retrain, the seed and the best included (all of them when the study has fewer)', integer('--sample', 2, 999), 20)
      .addOption(new Option('--budget <budget>', 'training budget per run: time, steps, tokens or FLOPs, as for primer search').argParser(budgetArg).conflicts('factor'))
      .addOption(new Option('--factor <k>', "the budget per run as a multiple of the search's budget per candidate").argParser(positiveNumber('--factor')).default(5)),
  )
    .option('--seeds <n>', "seeds per program: the study's seed, +1, +2, ... (with 1, the longer run's agreement with itself, the ceiling for the proxy's rho, is not measured)", integer('--seeds', 1, 100), 2)
    .option('--json', 'print the fidelity summary as JSON')
    .action(async (location: string, o: RetrainOptions, command: Command) => {
      const bare = ['sample', 'budget', 'factor', 'seeds'].every((k) => command.getOptionValueSource(k) !== 'cli');
      await retrainStudy(io, result, location, { ...o, top: 0, baselines: '', against: 'seed', heads: 4, bare }, true);
    });
}

/** The options primer study retrain and primer study fidelity share: where the runs train, references, plugins. */
function addRunPlanOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--workers <n>', "worker processes training runs at once on this machine (0: none, the runs go to primer worker processes through a PostgreSQL study's queue)")
        .argParser(integer('--workers', 0))
        .default(defaultWorkerCount(), `${defaultWorkerCount()}, one per core`)
    )
    .option('--in-flight <n>', 'with --workers 0: runs out on the queue at once (default 2)', integer('--in-flight', 1))
    .addOption(
      new Option(
        '--checkpoint-every <time>',
        "how often a run saves its training checkpoint on this machine (beside a study file: STUDY.checkpoints/), so that a run stopped part-way (Ctrl-C, a killed process, a machine gone) continues from there when the same command runs again, with the numbers an unstopped run gives; 0: after every step; off: none (a stopped run starts again)"
      )
        .argParser(checkpointEvery)
        .default(120, '2m')
    )
    .addOption(new Option('--run-timeout <time>', 'stop a run after this long (default: twice a time budget plus a minute, or 2h)').argParser(timeBudget))
    .addOption(
      new Option('--plugin <module>', "import this module first: the plugins the study was run with (a file or package; repeatable; a study's own record of them is never imported)")
        .argParser(collect)
        .default([], 'none')
    )
    .addOption(
      new Option(
        '--reuse-from <study>',
        "another study (a file, gzipped or not, or a URL; repeatable; only read) whose retrainings' completed runs are reused where they are this one's: the same program and seed, with the same settings (the study's own seed aside), data and plugins; not with a time budget"
      )
        .argParser(studyToReuse)
        .default([], 'none')
    );
}

/** --reuse-from: a study file must exist (a URL is checked when it is opened). */
function studyToReuse(value: string, previous: string[]): string[] {
  let where: ReturnType<typeof parseStudyLocation>;
  try {
    where = parseStudyLocation(value);
  } catch (e) {
    throw new InvalidArgumentError(`--reuse-from: ${(e as Error).message}`);
  }
  if (where.kind === 'sqlite' && !existsSync(where.target)) throw new InvalidArgumentError(`--reuse-from: no study file at ${where.display}.`);
  return [...previous, value];
}

/**
 * primer study retrain and primer study fidelity: train a plan's runs (recorded in the study,
 * resumed by the same command, reusing runs another plan with the same settings made), then
 * print the retraining's leaderboard or the fidelity measurement.
 */
async function retrainStudy(io: CliIo, result: CommandResult, location: string, o: RetrainOptions, fidelity: boolean): Promise<void> {
  const noun = fidelity ? 'fidelity measurement' : 'retraining';
  const plugins = o.plugin.map(pluginSpecifier);
  const names = o.baselines
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  for (const name of names) {
    if (!baselines.has(name) && !existsSync(name))
      throw new UsageError(`--baselines: no baseline or DNA file ${quote(name)}${didYouMean(name, baselines.names())} (baselines: ${baselines.names().join(', ')})`);
  }
  const referenceLabels = names.map(modelName);
  if (o.against !== 'seed' && !/^candidate \d+$/.test(o.against) && !referenceLabels.includes(o.against)) {
    throw new UsageError(
      `--against: ${quote(o.against)} is not a program of this retraining${didYouMean(o.against, ['seed', ...referenceLabels])}: give seed, candidate N, or one of --baselines${
        referenceLabels.length ? ` (${referenceLabels.join(', ')})` : ' (none given)'
      }`
    );
  }
  const where = parseStudyLocation(location);
  if (o.workers === 0 && where.kind !== 'postgres') throw new UsageError('--workers 0 sends the runs to primer worker processes through a queue in PostgreSQL: give a postgres://... study');
  if (o.inFlight !== undefined && o.workers !== 0) throw new UsageError('--in-flight counts runs out on the queue: it goes with --workers 0');
  const tooMany = workersWarning(o.workers);
  if (tooMany) io.stderr(`${tooMany}\n`);
  const { store, config } = await openForChange(location, fidelity ? ' to measure' : ' to retrain');
  try {
    // the bare command on a study that has measurements: most likely meant to show one, not to
    // start another of 20 programs with the defaults (hours of training)
    const measured = fidelity && o.bare ? (await store.retrains()).filter((p) => p.sample !== undefined) : [];
    if (measured.length > 0) {
      const last = measured.at(-1)!;
      throw new UsageError(
        `${where.display} already holds fidelity measurement${measured.length === 1 ? '' : 's'} ${measured.map((p) => p.id).join(', ')}: primer study show ${where.display} prints ${measured.length === 1 ? 'it' : 'them'}. ` +
          `To continue measurement ${last.id}, give its options (--sample ${last.sample} --budget ${last.budget.replace(/\s+/g, '')} --seeds ${last.seeds.length}); to start another, give at least one of --sample, --budget, --factor, --seeds (the defaults: --sample 20 --factor 5 --seeds 2)`,
      );
    }
    checkStudyPlugins(config, plugins, where.display);
    await loadPlugins(plugins);
    // one controller per study, refused before any data is prepared (held until the store closes)
    await store.lockController();
    const references: Array<{ label: string; dna: Dna }> = [];
    for (const name of names) {
      const r = loadDna(io, name, config.settings.dModel, o.heads, '--baselines');
      if (!r.ok) {
        io.stderr(`${r.message}\n`);
        result.exitCode = 1;
        return;
      }
      references.push({ label: modelName(name), dna: r.dna });
    }
    const reuseFrom: ReuseSource[] = [];
    for (const other of o.reuseFrom) {
      const shown = parseStudyLocation(other).display;
      // checked now, read when the retraining's plan is known (and closed before anything trains)
      const store = await openForReading(other);
      let theirs: StudyConfig | undefined;
      try {
        theirs = (await store.config()) as StudyConfig | undefined;
      } finally {
        await store.close();
      }
      if (theirs?.studyId !== undefined && theirs.studyId === config.studyId) {
        throw new UsageError(`--reuse-from: ${shown} is the same study as ${where.display} (the same study id: the study itself, or a copy of it); its own runs are reused without it`);
      }
      reuseFrom.push({ name: shown, open: () => openForReading(other) });
    }
    const reuse: Array<{ from: string; matching: number; refusal?: string }> = [];
    const budget = o.budget ?? scaleBudget(config.settings.budget, o.factor ?? 5);
    const seeds = Array.from({ length: o.seeds }, (_, k) => config.settings.seed + k);
    // each run's checkpoint, on this machine: a run stopped part-way continues from it (not through a queue: its workers are elsewhere)
    const checkpointDir = o.workers === 0 || o.checkpointEvery === false ? undefined : checkpointFolder(where, config);
    const stop = new AbortController();
    const onSigint = () => {
      if (stop.signal.aborted) process.exit(130);
      io.stderr(`\nstopping: finished runs are saved in ${where.display}${checkpointDir ? ', runs under way continue from their last checkpoint' : ''}; continue with the same command (Ctrl-C again to quit at once)\n`);
      stop.abort();
    };
    process.on('SIGINT', onSigint);
    const t0 = performance.now();
    let labels: string[] = [];
    let against = 0;
    let outcome: Awaited<ReturnType<typeof runRetrain>>;
    // through the study's queue, to primer worker processes anywhere (as primer search --workers 0)
    const queue = o.workers === 0 ? await openQueuePool(location, o.inFlight ?? 2) : undefined;
    const via = queue ? `${o.inFlight ?? 2} at a time through the queue ${queue.queue} (start primer worker --study ... on any machine)` : `${o.workers} worker${o.workers === 1 ? '' : 's'}`;
    try {
      outcome = await runRetrain({
        store,
        top: fidelity ? 0 : o.top,
        ...(fidelity ? { sample: o.sample } : {}),
        ...(o.front ? { front: true } : {}),
        budget,
        seeds,
        references,
        against: o.against,
        plugins,
        pool: queue?.pool ?? new LocalWorkerPool(o.workers),
        // the data are prepared once, here, and only when something is left to train
        prepare: async () => {
          if (o.json) await prepareData(config.settings);
          else await announceData(io, config.settings);
          await checkStudyData(store, config, config.settings, where.display);
        },
        timeoutSeconds: o.runTimeout?.kind === 'seconds' ? o.runTimeout.seconds : undefined,
        signal: stop.signal,
        reuseFrom,
        ...(checkpointDir ? { checkpointDir, checkpointEverySeconds: o.checkpointEvery as number } : {}),
        onEvent: (e) => {
          if (e.type === 'started') against = o.against === 'seed' ? 0 : e.plan.programs.findIndex((p) => p.label === o.against);
          if (e.type === 'reuse') reuse.push({ from: e.from, matching: e.matching, ...(e.refusal ? { refusal: e.refusal } : {}) });
          if (o.json) return;
          if (e.type === 'started') {
            labels = e.plan.programs.map((p) => p.label);
            io.stderr(
              `${e.resumed ? `continuing ${noun} ${e.plan.id} (${e.done} of ${e.total} runs recorded)` : `${noun} ${e.plan.id}`} of ${where.display}: ${labels.join(', ')} · ` +
                `${e.plan.budget} per run · seeds ${e.plan.seeds.join(', ')} · ${via}\n`
            );
          }
          if (e.type === 'reuse') {
            io.stderr(
              e.refusal
                ? `--reuse-from ${e.from}: no run of it is reused: ${e.refusal}\n`
                : `--reuse-from ${e.from}: ${e.matching} of its runs ${e.matching === 1 ? 'is' : 'are'} reused (the same program, seed and settings; none trained here yet)\n`
            );
          }
          if (e.type === 'finished') {
            const r = e.run;
            const what = r.status === 'completed' ? `perplexity ${r.fitness!.toFixed(3)}` : `failed: ${r.reason}`;
            const elapsed = (performance.now() - t0) / 1000;
            const how = r.reusedFrom
              ? `the same run as ${r.reusedFrom.study === undefined ? '' : `${r.reusedFrom.study}'s `}retraining ${r.reusedFrom.retrain}${r.reusedFrom.study === undefined ? "'s" : ''}, reused`
              : `${fmt(r.steps)} steps in ${duration(r.trainSeconds)}${e.resumedAt !== undefined ? ` (continued from the checkpoint an earlier try left at step ${fmt(e.resumedAt)})` : ''}`;
            io.stderr(`[${e.done}/${e.total}] ${labels[r.program]}, seed ${r.seed}: ${what} · ${how} · elapsed ${duration(elapsed)}\n`);
          }
        },
      });
    } catch (e) {
      // checked against the plan before anything was recorded: the command line's fault
      if (e instanceof RetrainArgumentError) throw new UsageError(`--against: ${e.message}`);
      throw e;
    } finally {
      process.off('SIGINT', onSigint);
      await queue?.stop();
    }
    const runs = await store.retrainRuns(outcome.plan.id);
    if (fidelity) {
      const summary = summarizeFidelity(outcome.plan, runs);
      if (o.json) io.stdout(jsonText(reuse.length ? { ...summary, reuse } : summary));
      else io.stdout(`\n${formatTable(summary.table)}`);
    } else {
      const summary = summarizeRetrain(outcome.plan, runs, against);
      if (o.json) io.stdout(jsonText(reuse.length ? { ...summary, reuse } : summary));
      else {
        io.stdout(`\n${formatRetrain(summary)}`);
        const winner = summary.winner && summary.winner.program !== 0 ? outcome.plan.programs[summary.winner.program] : undefined;
        if (winner) io.stdout(`\n${winner.label}'s diff against the seed (- seed, + ${winner.label}):\n${dnaDiff(config.seedDna, winner.dna as Dna)}`);
      }
    }
    if (outcome.stopped) {
      io.stderr(`stopped; continue with the same command: primer study ${fidelity ? 'fidelity' : 'retrain'} ${where.display} ...\n`);
      result.exitCode = 130;
    }
  } finally {
    await store.close();
  }
}
