import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, lstatSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { escapeText, PrimerError } from '@primer-search/core';
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
 * or a name too long for the suffix). This process's own output redirected to a file
 * (`--csv /dev/stdout > out.txt`) is written through its descriptor, after what the process
 * printed there. Any failure (a full disk, a missing folder) leaves the old file as it was and
 * is a `PrimerError` (CANNOT_WRITE) that names the file. The temporary files a killed writer left
 * beside the same file are removed once a day old. `durable`: the file and its folder are flushed
 * to the disk before it returns (for what a crash must not lose, where something is removed next
 * on the strength of it).
 */
export function writeWhole(path: string, text: string | Uint8Array, options: { durable?: boolean } = {}): void {
  try {
    write(path, text, options.durable === true);
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).code;
    throw Object.assign(new PrimerError('CANNOT_WRITE', `cannot write ${escapeText(path, 300)}: ${escapeText((e as Error).message, 300)}`, { cause: e }), { errno });
  }
}

function write(path: string, text: string | Uint8Array, durable: boolean): void {
  const own = ownFile(path);
  if (own !== undefined) return writeFlushed(own, text, durable);
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
    if (code === undefined || !IN_PLACE.has(code)) throw e;
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
 * The descriptor of this process's own output that `path` names (`--csv /dev/stdout`) when that
 * output is a regular file (`> out.txt`): written through it, the text lands after what the
 * process printed there, where opening the name again would write over it from the start. (A
 * pipe or a terminal is opened by its name as any other path: Node may have made the process's
 * own descriptor non-blocking, and its prints to a pipe may still be queued.)
 */
function ownFile(path: string): number | undefined {
  const m = /^\/(?:dev\/(stdout|stderr|fd\/(\d+))|proc\/self\/fd\/(\d+))$/.exec(path);
  if (!m) return undefined;
  const fd = m[1] === 'stdout' ? 1 : m[1] === 'stderr' ? 2 : Number(m[2] ?? m[3]);
  try {
    return fstatSync(fd).isFile() ? fd : undefined;
  } catch {
    return undefined; // not open here: the name, opened, says why
  }
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
