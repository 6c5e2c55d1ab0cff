import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Option, type Command } from 'commander';
import {
  BACKEND_OPTIONS,
  hardwareDifferences,
  isEnvironmentFailure,
  isEquivalent,
  jobName,
  pluginDifferences,
  pluginIdentity,
  pluginName,
  studyKey,
  studyPluginIdentities,
  trainingEnvironment,
  type BackendChoice,
  type JobOutcome,
  type JobResult,
  type StudyConfig,
  type TrainingEnvironment,
  type WorkerRecord,
} from '@primer-search/study';
import { JOBS_CHANNEL, LocalWorkerPool, QueueSignals, isInterruption, loadPlugins, serveQueue, startQueue, stoppingWithin, type QueuedJob } from '@primer-search/runner/controller';
import { openStudyStore, parseStudyLocation, type StudyStore } from '@primer-search/store';
import { checkBackend, collect, integer, number } from '../flags.js';
import { UsageError, type CliIo } from '../io.js';
import { loadTrainer } from '../trainer.js';
import { pluginSpecifier } from '../studies.js';
import { announceData } from './train.js';

interface WorkerOptions {
  study: string;
  concurrency: number;
  plugin: string[];
  poll: number;
  backend?: BackendChoice;
  allowMixedHardware?: boolean;
}

/** The hardware a study's results so far were measured on: its first worker's, or its first recorded evaluation's. */
async function referenceOf(store: StudyStore): Promise<{ environment: TrainingEnvironment; plugins?: WorkerRecord['plugins'] } | undefined> {
  const [first] = await store.workers();
  if (first) return first;
  const e = (await store.evaluations()).find((x) => x.environment);
  return e?.environment ? { environment: e.environment } : undefined;
}

/**
 * Whether this worker may join the study: its backend must be the study's (when the study
 * names one) and, with the study's first worker, its backend, processor (under a time
 * budget) and plugins must match; `--allow-mixed-hardware` lets it join anyway, recorded.
 */
export function joinRefusal(config: StudyConfig, reference: Awaited<ReturnType<typeof referenceOf>>, me: TrainingEnvironment, plugins: WorkerRecord['plugins']): string[] {
  const out: string[] = [];
  // `auto` names an order to try, not a backend: the hardware check below compares what it chose
  const forced = config.settings.backend === 'auto' ? undefined : config.settings.backend;
  if (forced && forced !== me.backend) out.push(`backend ${me.backend} here, but the study was created with --backend ${forced}`);
  // the processor and products count however the backend was fixed; a forced one's mismatch is said above, once
  if (reference) out.push(...hardwareDifferences(reference.environment, { ...me, backend: forced ?? me.backend }, config.settings.budget));
  const studyPlugins = reference?.plugins ?? studyPluginIdentities(config);
  out.push(...pluginDifferences(studyPlugins, plugins));
  return out;
}

/**
 * A result as this worker records it: its machine, and its environment (this worker's, when the
 * result records none: the pool's failures); a failure recorded before any training (no step,
 * no backend, e.g. a crash at its first step) trained on no machine and keeps none.
 */
export function onThisMachine(outcome: JobResult, me: TrainingEnvironment, allowMixedHardware: boolean): JobResult & { machine: string } {
  const trainedHere = outcome.environment !== null || outcome.steps > 0 || outcome.backend !== null;
  return { ...outcome, machine: hostname(), environment: outcome.environment ? { ...outcome.environment, ...(allowMixedHardware ? { mixedHardware: true as const } : {}) } : trainedHere ? me : null };
}

export function workerCommand(program: Command, io: CliIo): void {
  program
    .command('worker')
    .description(
      'Train candidates of a study in PostgreSQL, on this machine, for a controller anywhere (primer search --study postgres://... --workers 0). ' +
        'Takes jobs from the study\'s queue, trains each in a local worker process exactly as primer search does, and sends the result back. ' +
        'Joins only a study whose workers so far have the same backend, processor (under a time budget) and plugins, unless --allow-mixed-hardware. Runs until Ctrl-C.',
    )
    .requiredOption('--study <url>', 'the study: postgres://user@host:5432/db?schema=name')
    .option('--concurrency <n>', 'candidates trained at once (one worker process each)', integer('--concurrency', 1), 1)
    .addOption(new Option('--backend <name>', 'the TensorFlow.js backend to train on (default: the study\'s, or the fastest that starts; auto: with a GPU through WebGPU too)').choices([...BACKEND_OPTIONS]))
    .addOption(new Option('--plugin <module>', 'import this module (a file or package registering primitives); a job that needs a plugin this worker was not started with is refused').argParser(collect).default([], 'none'))
    .option('--poll <seconds>', 'how often to look for a job when the queue is empty (at least 0.5)', number('--poll'), 1)
    .option('--allow-mixed-hardware', 'join even if this machine\'s backend, processor or plugins differ from the study\'s first worker (recorded with every result it sends)')
    .action(async (o: WorkerOptions) => {
      const where = parseStudyLocation(o.study);
      if (where.kind !== 'postgres') throw new UsageError(`--study: a worker needs a study in PostgreSQL (postgres://...), got ${where.display}`);
      checkBackend(o.backend);
      const plugins = o.plugin.map(pluginSpecifier);
      await loadPlugins(plugins);
      const myPlugins = plugins.map((p) => pluginIdentity(p));
      // a worker never creates a study; started before its controller, it waits for one
      let said = false;
      let store: StudyStore;
      let config: StudyConfig | undefined;
      for (;;) {
        try {
          // read-only: a worker never creates or migrates a study's tables (it only puts itself on record)
          store = await openStudyStore(o.study, { readonly: true, mustExist: true });
          config = (await store.config()) as StudyConfig | undefined;
          if (config) break;
          await store.close();
        } catch (e) {
          if (!/^no study at /.test((e as Error).message)) throw e;
        }
        if (!said) io.stderr(`waiting for a study at ${where.display} (start it with primer search --study URL --workers 0)\n`);
        said = true;
        await new Promise((r) => setTimeout(r, 1000));
      }
      // the backend this machine trains on, as its worker processes will pick it
      const backendChoice = o.backend ?? config.settings.backend;
      const { selectBackend } = await loadTrainer();
      const selected = await selectBackend(backendChoice);
      const tfjs = (selected.tf as unknown as { version_core: string }).version_core;
      const me: TrainingEnvironment = { ...trainingEnvironment(selected.choice, tfjs, selected.products), ...(o.allowMixedHardware ? { mixedHardware: true as const } : {}) };
      const id = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
      try {
        const differs = joinRefusal(config, await referenceOf(store!), me, myPlugins);
        if (differs.length && !o.allowMixedHardware) {
          throw new UsageError(
            `this worker does not match the study ${where.display}, so its results could not be compared with the others': ${differs.join('; ')}. ` +
              'Start it on matching hardware with matching --plugin modules, or add --allow-mixed-hardware to join anyway (recorded with its results)',
          );
        }
        if (differs.length) io.stderr(`joining with different hardware (--allow-mixed-hardware, recorded): ${differs.join('; ')}\n`);
        await store!.registerWorker({ id, environment: me, plugins: myPlugins, allowMixedHardware: o.allowMixedHardware === true, startedAt: new Date().toISOString() });
      } finally {
        await store!.close();
      }
      // the data are prepared before the first job, not inside a candidate's time limit
      await announceData(io, config.settings);
      // a worker creates and changes nothing but jobs: it can run with a role that may do no more (docs/distributed.md)
      const { boss, queue } = await startQueue(o.study, { worker: true });
      const stop = new AbortController();
      const pool = new LocalWorkerPool(o.concurrency);
      let trained = 0;
      io.stderr(`worker ${id}: backend ${me.backend} (products: ${me.products}), ${me.device}, ${o.concurrency} at a time from ${where.display} (queue ${queue}); Ctrl-C to stop\n`);
      const handler = async ({ job, timeoutSeconds }: QueuedJob): Promise<JobOutcome> => {
        // nothing written in the database makes a worker load code: only its own --plugin modules
        const missing = job.plugins.map(pluginName).filter((n) => !myPlugins.some((p) => p.name === n));
        const name = jobName(job);
        // a job left on the queue by an earlier study in this schema is not this study's to train
        if (job.study && job.study !== studyKey(config)) throw new Error(`${name} belongs to another study than ${where.display} (an earlier one in this schema): not trained`);
        if (missing.length) throw new Error(`this worker was not started with the plugins ${name} needs: ${missing.join(', ')} (start it with --plugin)`);
        const differ = job.pluginIds ? pluginDifferences(job.pluginIds, myPlugins, { extraAllowed: true }) : [];
        if (differ.length && !o.allowMixedHardware) throw new Error(`${name} needs other plugin code than this worker has: ${differ.join('; ')}`);
        io.stderr(`${name}: training\n`);
        const outcome = await pool.run({ ...job, plugins, settings: { ...job.settings, backend: me.backend as BackendChoice } }, { timeoutSeconds });
        // its process stopped along with this worker (systemctl stop signals them all): not an outcome, the job goes back
        if (isInterruption(outcome) && (await stoppingWithin(stop.signal))) throw new Error('stopping');
        trained++;
        const what = isEnvironmentFailure(outcome)
          ? `environment: ${outcome.reason}`
          : isEquivalent(outcome)
            ? 'the same function as a program evaluated before: not trained'
            : outcome.status === 'failed'
              ? outcome.reason
              : `perplexity ${outcome.fitness?.toFixed(3)}`;
        io.stderr(`[${trained}] ${name}: ${what}\n`);
        if (isEnvironmentFailure(outcome) || isEquivalent(outcome)) return outcome;
        return onThisMachine(outcome, me, o.allowMixedHardware === true);
      };
      // woken by the controller's notification when a job is sent; polling as the fallback
      const signals = await QueueSignals.listen(o.study, boss, queue, JOBS_CHANNEL);
      const onStop = () => {
        if (stop.signal.aborted) return;
        io.stderr('stopping: the jobs in hand go back to the queue now (no try counted)\n');
        stop.abort();
      };
      process.once('SIGINT', onStop);
      process.once('SIGTERM', onStop);
      // a stop does not wait for the candidates in hand: they are handed back to the queue
      try {
        await serveQueue({
          boss,
          queue,
          concurrency: o.concurrency,
          pollSeconds: Math.max(0.5, o.poll),
          handle: handler,
          signals,
          signal: stop.signal,
          location: o.study,
          onLate: (job) => io.stderr(`job ${job}: its result came after the job was taken back (its lease ran out); it runs again elsewhere\n`),
        });
      } finally {
        stop.abort();
        process.off('SIGINT', onStop);
        process.off('SIGTERM', onStop);
        await signals.close();
        await boss.stop({ graceful: false, close: true, wait: true, timeout: 5000 }).catch(() => {});
        await pool.close();
      }
    });
}
