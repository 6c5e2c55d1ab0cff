import { hostname } from 'node:os';
import { Option, type Command } from 'commander';
import { isEnvironmentFailure } from '@primer-search/study';
import { LocalWorkerPool, loadPlugins, startQueue, type QueuedJob } from '@primer-search/runner/controller';
import { openStudyStore, parseStudyLocation } from '@primer-search/store';
import { integer, number } from '../flags.js';
import { UsageError, type CliIo } from '../io.js';
import { pluginSpecifier } from './search.js';

const collect = (value: string, previous: string[]) => [...previous, value];

export function workerCommand(program: Command, io: CliIo): void {
  program
    .command('worker')
    .description(
      'Train candidates of a study in PostgreSQL, on this machine, for a controller anywhere (primer search --study postgres://... --workers 0). ' +
        'Takes jobs from the study\'s queue, trains each in a local worker process exactly as primer search does, and sends the result back. Runs until Ctrl-C.',
    )
    .requiredOption('--study <url>', 'the study: postgres://user@host:5432/db?schema=name')
    .option('--concurrency <n>', 'candidates trained at once (one worker process each)', integer('--concurrency', 1), 1)
    .addOption(new Option('--plugin <module>', 'import this module (a file or package registering primitives); a job that needs a plugin this worker was not started with is refused').argParser(collect).default([], 'none'))
    .option('--poll <seconds>', 'how often to look for a job when the queue is empty (at least 0.5)', number('--poll'), 1)
    .action(async (o: { study: string; concurrency: number; plugin: string[]; poll: number }) => {
      const where = parseStudyLocation(o.study);
      if (where.kind !== 'postgres') throw new UsageError(`--study: a worker needs a study in PostgreSQL (postgres://...), got ${where.display}`);
      const plugins = o.plugin.map(pluginSpecifier);
      await loadPlugins(plugins);
      // a worker never creates a study; started before its controller, it waits for one
      let said = false;
      for (;;) {
        try {
          const store = await openStudyStore(o.study, { readonly: true });
          await store.close();
          break;
        } catch (e) {
          if (!/^no study at /.test((e as Error).message)) throw e;
          if (!said) io.stderr(`waiting for a study at ${where.display} (start it with primer search --study URL --workers 0)\n`);
          said = true;
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
      const { boss, queue } = await startQueue(o.study, { supervise: false });
      const pool = new LocalWorkerPool(o.concurrency);
      let trained = 0;
      io.stderr(`worker on ${hostname()}: ${o.concurrency} at a time from ${where.display} (queue ${queue}); Ctrl-C to stop\n`);
      const handler = async ([j]: Array<{ id: string; data: QueuedJob }>) => {
        const { job, timeoutSeconds } = j!.data;
        // nothing written in the database makes a worker load code: only its own --plugin modules
        const missing = job.plugins.filter((p) => !plugins.includes(p));
        if (missing.length) throw new Error(`this worker was not started with the plugins candidate ${job.candidate} needs: ${missing.join(', ')} (start it with --plugin)`);
        io.stderr(`candidate ${job.candidate}: training\n`);
        const outcome = await pool.run({ ...job, plugins }, { timeoutSeconds });
        trained++;
        const what = isEnvironmentFailure(outcome) ? `environment: ${outcome.reason}` : outcome.status === 'failed' ? outcome.reason : `perplexity ${outcome.fitness?.toFixed(3)}`;
        io.stderr(`[${trained}] candidate ${job.candidate}: ${what}\n`);
        return { ...outcome, machine: hostname() };
      };
      for (let k = 0; k < o.concurrency; k++) await boss.work<QueuedJob>(queue, { batchSize: 1, pollingIntervalSeconds: Math.max(0.5, o.poll) }, handler as never);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      io.stderr('stopping: the jobs in hand go back to the queue when their lease expires\n');
      await boss.stop({ graceful: false, close: true, wait: true, timeout: 5000 });
      await pool.close();
    });
}
