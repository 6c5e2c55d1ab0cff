import { PrimerError } from '@primer-search/core';

/** Where the CLI writes; injected so tests run commands in-process. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Reads a file (or stdin for "-"). */
  readFile: (path: string) => string;
  writeFile: (path: string, text: string) => void;
  /** Draw live progress bars (standard error is a terminal). */
  interactive?: boolean;
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
