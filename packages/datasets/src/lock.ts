import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';

/** Flushes a folder's entries (a file renamed or linked into it) to the disk. */
export function fsyncFolder(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Who holds a lock file: a running process of this machine, or any of another (whether it runs
 * cannot be told from here), as the lock names them; or, `text`, a file that is not a lock this
 * module wrote (never taken over: it is not ours to remove).
 */
export type LockHolder = { pid: number; host: string } | { text: string };

/** A lock taken (`release` gives it back), or the live holder that keeps it. */
export type LockAttempt = { release: () => void } | { heldBy: LockHolder };

/** Whether process `pid` of this machine runs; this very process counts as not (a pid reused in a new container). */
function running(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // alive under another user
  }
}

/** The holder a lock's text names, and whether it still holds it (a gone process does not). */
function holderOf(text: string): { holder: LockHolder; holds: boolean } {
  try {
    const { pid, host } = JSON.parse(text) as { pid?: unknown; host?: unknown };
    if (Number.isSafeInteger(pid) && typeof host === 'string') return { holder: { pid: pid as number, host }, holds: host !== hostname() || running(pid as number) };
  } catch {
    // not JSON
  }
  return { holder: { text }, holds: true };
}

/**
 * Takes the lock file `file` for this process, or says who holds it. The file is made whole
 * before it appears (written beside, then linked into place, which fails if one is there), so no
 * reader ever sees half of one. A lock whose process is gone (killed; or this very process id,
 * reused in a new container) is moved aside in one step and taken over; if what moved aside was a
 * live lock taken meanwhile, it is put back. A lock of another machine counts as held (whether its
 * process runs cannot be told from here), and so does a file that is not a lock. File system
 * errors (a folder that takes no files) are thrown as they are.
 */
export function tryLock(file: string): LockAttempt {
  const me = JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() });
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const mine = join(dirname(file), `${tag}.lock-tmp`);
  writeFileSync(mine, me);
  try {
    for (;;) {
      try {
        linkSync(mine, file);
        return {
          release: () => {
            try {
              if (readFileSync(file, 'utf8') === me) rmSync(file, { force: true });
            } catch {
              // gone already
            }
          },
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        continue; // released meanwhile
      }
      const { holder, holds } = holderOf(text);
      if (holds) return { heldBy: holder };
      // its process is gone: move it aside, and put it back if what moved was a live lock taken meanwhile
      const aside = join(dirname(file), `${tag}.lock-stale`);
      try {
        renameSync(file, aside);
      } catch {
        continue; // another process took it over first
      }
      let moved = '';
      try {
        moved = readFileSync(aside, 'utf8');
      } catch {
        // unreadable: not the one read
      }
      if (moved !== text) {
        try {
          linkSync(aside, file);
        } catch {
          // another lock is there again
        }
      }
      rmSync(aside, { force: true });
    }
  } finally {
    rmSync(mine, { force: true });
  }
}
