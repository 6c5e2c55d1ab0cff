import { fork, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { environmentFailure, failedResult, isEnvironmentFailure, trainedSoFar, type EvaluationJob, type JobOutcome, type JobProgress } from '@primer-search/study';
import type { FromWorker, ToWorker } from './worker.js';

export interface RunJobOptions {
  /** Kill the job after this many seconds of wall time (compile, training and evaluation). */
  timeoutSeconds: number;
  onProgress?: (p: JobProgress) => void;
}


/** The signals a person or a service manager stops processes with (the OOM killer sends SIGKILL). */
const STOP_SIGNALS = new Set<NodeJS.Signals>(['SIGINT', 'SIGTERM', 'SIGHUP']);
/** How an environment failure from a stopped worker process begins (see `isInterruption`). */
export const INTERRUPTED = 'interrupted';
/** Whether an outcome is a worker process stopped from outside: during a stop, never an outcome to record or report. */
export const isInterruption = (o: JobOutcome): boolean => isEnvironmentFailure(o) && o.reason.startsWith(`${INTERRUPTED}:`);

/**
 * Whether the caller is stopping: `signal` aborts within `ms`. A stop signal reaches the worker
 * processes and their parent at once, in no set order, so an interruption may be seen before the
 * parent's own stop: it is then not an outcome.
 */
export function stoppingWithin(signal: AbortSignal | undefined, ms = 2000): Promise<boolean> {
  if (!signal) return Promise.resolve(false);
  if (signal.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(signal.aborted), ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve(true)), { once: true });
  });
}

/** Where candidates are trained. `run` is called with at most `size` jobs at once. */
export interface EvaluationPool {
  readonly size: number;
  run(job: EvaluationJob, options: RunJobOptions): Promise<JobOutcome>;
  close(): Promise<void>;
}

/** One worker per core, by default. */
export const defaultWorkerCount = (): number => Math.max(1, availableParallelism());

interface Worker {
  child: ChildProcess;
  busy: boolean;
  /** Killed or exited: never given another job. */
  dead: boolean;
  stderr: string;
}

/** How to start the worker script: the built one, or the TypeScript source under tsx when running from source (tests, dev). */
function workerEntry(): { path: string; execArgv: string[] } {
  const fromSource = import.meta.url.endsWith('.ts');
  return fromSource
    ? { path: fileURLToPath(new URL('./worker.ts', import.meta.url)), execArgv: ['--conditions=@primer-search/source', '--import', 'tsx'] }
    : { path: fileURLToPath(new URL('./worker.js', import.meta.url)), execArgv: [] };
}

/**
 * A pool of worker processes on this machine. A worker trains one candidate at a time and
 * is reused; one that crashes, runs out of memory or over its time is killed, its
 * candidate recorded as failed with the reason, and a fresh worker takes its place.
 */
export class LocalWorkerPool implements EvaluationPool {
  private readonly workers: Worker[] = [];
  private closed = false;

  constructor(
    readonly size: number = defaultWorkerCount(),
    private readonly options: { execArgv?: string[]; env?: NodeJS.ProcessEnv } = {},
  ) {}

  private spawn(): Worker {
    const entry = workerEntry();
    const child = fork(entry.path, [], {
      execArgv: [...entry.execArgv, ...(this.options.execArgv ?? [])],
      env: { ...process.env, ...this.options.env },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    const w: Worker = { child, busy: false, dead: false, stderr: '' };
    child.stderr?.on('data', (d: Buffer) => {
      w.stderr = (w.stderr + d.toString()).slice(-4000);
    });
    child.on('exit', () => {
      w.dead = true;
      const i = this.workers.indexOf(w);
      if (i >= 0) this.workers.splice(i, 1);
    });
    this.workers.push(w);
    return w;
  }

  run(job: EvaluationJob, options: RunJobOptions): Promise<JobOutcome> {
    if (this.closed) return Promise.reject(new Error('the pool is closed'));
    const w = this.workers.find((x) => !x.busy && !x.dead) ?? this.spawn();
    w.busy = true;
    w.stderr = '';
    return new Promise<JobOutcome>((resolve) => {
      let settled = false;
      const finish = (r: JobOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        w.child.off('message', onMessage);
        w.child.off('exit', onExit);
        w.busy = false;
        resolve(r);
      };
      // the job's last progress: what a timeout or a crash leaves recorded (up to half a second behind, as the worker reports it)
      let last: JobProgress | undefined;
      const onMessage = (m: FromWorker) => {
        if (m.type === 'progress' && m.progress.candidate === job.candidate) {
          last = m.progress;
          options.onProgress?.(m.progress);
        }
        if (m.type === 'result' && m.result.candidate === job.candidate) {
          // a process that ends after this result is never handed the next job
          if (m.retiring) {
            w.dead = true;
            const i = this.workers.indexOf(w);
            if (i >= 0) this.workers.splice(i, 1);
          }
          finish(m.result);
        }
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        const err = w.stderr;
        const detail = err.trim().split('\n').filter(Boolean).slice(-3).join(' | ');
        const oom = /heap out of memory|Out of memory|Allocation failed/i.test(err);
        const how = signal ? `killed by ${signal}` : `exit code ${code}`;
        // stopped from outside (Ctrl-C, systemctl stop, kill): the machine's doing, never the program's
        if (signal && STOP_SIGNALS.has(signal)) return finish(environmentFailure(job, `${INTERRUPTED}: the worker process was stopped (${how})`));
        finish(failedResult(job, oom ? `out of memory: the worker died (${how})` : `crashed: the worker died (${how})${detail ? `: ${detail}` : ''}`, trainedSoFar(last)));
      };
      const timer = setTimeout(() => {
        w.dead = true;
        w.child.kill('SIGKILL');
        finish(failedResult(job, `timeout: no result after ${options.timeoutSeconds}s`, trainedSoFar(last)));
      }, options.timeoutSeconds * 1000);
      w.child.on('message', onMessage);
      w.child.on('exit', onExit);
      w.child.send({ type: 'job', job } satisfies ToWorker);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.child.exitCode !== null || w.child.signalCode !== null) return resolve();
            w.child.once('exit', () => resolve());
            w.child.kill('SIGTERM');
          }),
      ),
    );
  }
}
