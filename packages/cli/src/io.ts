import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, lstatSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { PrimerError } from '@primer-search/core';
import { fsyncFolder, sweepStale } from '@primer-search/datasets';

/** Where the CLI writes; injected so tests run commands in-process. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Reads a file (or stdin for "-"). */
  readFile: (path: string) => string;
  writeFile: (path: string, text: string) => void;
  /** Draw live progress bars (standard error is a terminal). */
  interactive?: boolean;
  /**
   * Asks a yes/no question and resolves to the answer; absent where nothing can be asked
   * (standard input is not a terminal): a command that needs a confirmation then wants --yes.
   */
  confirm?: (question: string) => Promise<boolean>;
}

/** A destructive command's confirmation: --yes, or a yes from the user; refused (exit 2) where nobody can be asked. */
export async function confirmed(io: CliIo, question: string, yes: boolean | undefined): Promise<boolean> {
  if (yes) return true;
  if (!io.confirm) throw new UsageError(`${question.replace(/\?$/, '')}: nobody can be asked here (standard input is not a terminal); add --yes to confirm`);
  return io.confirm(question);
}

/** Input the user pointed at cannot be read: a usage problem (exit 2), not an invalid DNA. */
export class UsageError extends PrimerError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

export function readInput(io: CliIo, path: string): string {
  try {
    return io.readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message;
    throw new UsageError(`cannot read ${path}: ${why}`);
  }
}

/** Whether `path` is a regular file or nothing yet: what `writeWhole` replaces whole (anything else it writes in place). */
export function isRegularOrAbsent(path: string): boolean {
  try {
    return lstatSync(path).isFile();
  } catch {
    return true; // not there yet
  }
}

/** Why a file could not be written beside its place where writing it in place may still work (or fail naming it). */
const IN_PLACE = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOENT', 'ENAMETOOLONG']);

/**
 * Writes a file whole: a regular file (or a new one) is written beside and renamed onto its
 * place, so a reader or a crash never finds half of it; anything else (/dev/stdout, a pipe, a
 * link) is written in place, as is a file whose folder takes no new file (read-only, not there,
 * or a name too long for the suffix: the error then names the file). Any other failure (a full
 * disk) leaves the old file as it was, and the error names the file. The temporary files a killed
 * writer left beside the same file are removed once a day old. `durable`: the file and its folder
 * are flushed to the disk before it returns (for what a crash must not lose, where something is
 * removed next on the strength of it).
 */
export function writeWhole(path: string, text: string | Uint8Array, options: { durable?: boolean } = {}): void {
  const durable = options.durable === true;
  if (!isRegularOrAbsent(path)) {
    writeFlushed(path, text, durable);
    return;
  }
  const tmp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFlushed(tmp, text, durable);
  } catch (e) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // a name too long to make is not there to remove
    }
    const code = (e as NodeJS.ErrnoException).code;
    if (code === undefined || !IN_PLACE.has(code)) throw Object.assign(new Error(`cannot write ${path}: ${(e as Error).message}`), { code });
    writeFlushed(path, text, durable);
    return;
  }
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  if (durable) {
    try {
      fsyncFolder(dirname(path));
    } catch {
      // a folder that cannot be opened for that here (some file systems): the file itself is flushed
    }
  }
  // what a process killed between the write and the rename left of this file, once a day old
  sweepStale(`${path}.`, /^\d+-[0-9a-f]{8}\.tmp$/);
}

/** Writes `text` to `path`; `durable`: flushed to the disk before it returns (a pipe or a terminal that cannot be flushed is written all the same). */
function writeFlushed(path: string, text: string | Uint8Array, durable: boolean): void {
  if (!durable) return writeFileSync(path, text);
  const fd = openSync(path, 'w');
  try {
    writeFileSync(fd, text);
    try {
      fsyncSync(fd);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EINVAL' && code !== 'ENOTSUP') throw e;
    }
  } finally {
    closeSync(fd);
  }
}
