/**
 * Riding out a database that goes away (a restart, a failover, a network blip): what the
 * controller and the workers do with every PostgreSQL call. They retry with backoff, for up to
 * PRIMER_DB_RETRY_SECONDS (default 300), then give up with one line naming the database (its
 * password masked). Training goes on meanwhile; results are written once the database is back.
 */
import { StoreError } from './errors.js';
import { maskUrl } from './secrets.js';

/** PostgreSQL's and Node's ways of saying the connection is gone or not there yet (not that a query is wrong). */
const LOST_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', '57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006']);
const LOST_MESSAGES = /Connection terminated|connection error|terminating connection|the database system is (starting up|shutting down|in recovery|not yet accepting)|timeout exceeded when trying to connect|Client was closed|Connection refused|read ECONNRESET|connect ECONNREFUSED/i;

/** Whether `e` says the database connection was lost or refused (worth waiting for), rather than a query being wrong. */
export function isConnectionLost(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && LOST_CODES.has(code)) return true;
  const message = e instanceof Error ? e.message : String(e);
  return LOST_MESSAGES.test(message);
}

/** How long to wait for a lost database before giving up (PRIMER_DB_RETRY_SECONDS). */
export const reconnectSeconds = (): number => {
  const v = Number(process.env.PRIMER_DB_RETRY_SECONDS);
  // unset or not a number (which would never give up): the default
  return process.env.PRIMER_DB_RETRY_SECONDS !== undefined && Number.isFinite(v) && v >= 0 ? v : 300;
};

/** `p`, or nothing after `ms`: closing a connection that died with its server must not hang a process that is done. */
export function within(ms: number, p: Promise<unknown> | undefined): Promise<void> {
  if (!p) return Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p.then(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, ms)))]).finally(() => clearTimeout(timer));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let notice: ((line: string) => void) | undefined;
/** Says `line` where the command shows notices (nowhere when none is set). */
export function reconnectNotice(line: string): void {
  notice?.(line);
}

/** Where to say that a database went away and is being waited for (the CLI: standard error); once per outage and call. */
export function setReconnectNotice(say: ((line: string) => void) | undefined): void {
  notice = say;
}

/**
 * Runs `fn`, and again with backoff (0.25 s doubling to 5 s) while it fails because the database
 * is gone, for up to `reconnectSeconds()`; then a StoreError in one line. Any other error passes
 * through at once. `fn` must be safe to run again (each caller makes its writes idempotent).
 */
export async function withReconnect<T>(location: string, what: string, fn: () => Promise<T>, onWait?: (seconds: number, e: unknown) => void): Promise<T> {
  const start = Date.now();
  let delay = 250;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!isConnectionLost(e)) throw e;
      const waited = (Date.now() - start) / 1000;
      const limit = reconnectSeconds();
      if (waited >= limit) {
        const why = (e instanceof Error ? e.message : String(e)).split('\n')[0];
        throw new StoreError(`lost the database at ${maskUrl(location)} for ${Math.round(waited)} s while ${what} (${why}); what finished before is saved: continue once it is back`);
      }
      if (attempt === 0) {
        onWait?.(limit, e);
        notice?.(`the database at ${maskUrl(location)} is away (${(e instanceof Error ? e.message : String(e)).split('\n')[0]}) while ${what}: waiting for it, up to ${limit} s`);
      }
      await sleep(Math.min(delay, Math.max(0, limit * 1000 - (Date.now() - start))));
      delay = Math.min(delay * 2, 5000);
    }
  }
}
