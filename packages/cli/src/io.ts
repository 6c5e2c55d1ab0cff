import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, lstatSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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
 * link) is written in place (this process's own output, /dev/stdout or /dev/stderr, through its
 * descriptor: after what it printed there before), as is a file whose folder takes no new file (read-only, not there,
 * or a name too long for the suffix: the error then names the file). Any other failure (a full
 * disk) leaves the old file as it was, and the error names the file. The temporary files a killed
 * writer left beside the same file are removed once a day old. `durable`: the file and its folder
 * are flushed to the disk before it returns (for what a crash must not lose, where something is
 * removed next on the strength of it).
 */
export function writeWhole(path: string, text: string | Uint8Array, options: { durable?: boolean } = {}): void {
  const durable = options.durable === true;
  const own = ownOutput(path);
  if (own !== undefined) {
    try {
      return writeFlushed(own, text, durable);
    } catch (e) {
      throw Object.assign(new Error(`cannot write ${path}: ${(e as Error).message}`), { code: (e as NodeJS.ErrnoException).code });
    }
  }
  if (!isRegularOrAbsent(path)) return writeFlushed(path, text, durable);
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
    if (durable) syncFolderOf(path);
    return;
  }
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  if (durable) syncFolderOf(path);
  // what a process killed between the write and the rename left of this file, once a day old
  sweepStale(`${path}.`, /^\d+-[0-9a-f]{8}\.tmp$/);
}

/** Flushes the folder that names `path` (a new name in it), where the file system allows. */
function syncFolderOf(path: string): void {
  try {
    fsyncFolder(dirname(path));
  } catch {
    // a folder that cannot be opened for that here (some file systems): the file itself is flushed
  }
}

/**
 * The descriptor of this process's own output that `path` names (`--csv /dev/stdout`), written
 * through as the process's own prints are: at the same place in the same order, where opening
 * the name again would write over them from the start when the output is a file (`> out.txt`).
 */
function ownOutput(path: string): number | undefined {
  const m = /^\/(?:dev\/(stdout|stderr|fd\/(\d+))|proc\/self\/fd\/(\d+))$/.exec(path);
  if (!m) return undefined;
  return m[1] === 'stdout' ? 1 : m[1] === 'stderr' ? 2 : Number(m[2] ?? m[3]);
}

/**
 * Writes `text` to `to` (a path, replaced, or a descriptor this process holds, at its place);
 * `durable`: flushed to the disk before it returns (what is not a regular file, a pipe or a
 * terminal, is written all the same when it cannot be flushed).
 */
function writeFlushed(to: string | number, text: string | Uint8Array, durable: boolean): void {
  if (!durable) return writeFileSync(to, text);
  const fd = typeof to === 'number' ? to : openSync(to, 'w');
  try {
    writeFileSync(fd, text);
    try {
      fsyncSync(fd);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code !== 'EINVAL' && code !== 'ENOTSUP') || fstatSync(fd).isFile()) throw e;
    }
  } finally {
    if (fd !== to) closeSync(fd);
  }
}
