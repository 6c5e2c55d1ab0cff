import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { PrimerError } from '@primer-search/core';
import { extract } from 'tar-stream';

/** A problem with a data file, naming the file (and line, where there is one). */
export class DataError extends PrimerError {
  constructor(message: string) {
    super('DATA', message);
  }
}

/** The lines of a stream, numbered from 1; a failure of the stream names `label` and the line reached. */
async function* linesOf(input: Readable, label: string): AsyncGenerator<{ text: string; line: number }> {
  let line = 0;
  let failure: Error | undefined;
  input.on('error', (e) => (failure = e));
  const rl = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const text of rl) {
      line++;
      yield { text, line };
    }
  } catch (e) {
    failure ??= e as Error;
  }
  if (failure) {
    const what = /incorrect header|invalid|unexpected end|gzip/i.test(failure.message) ? 'is not a valid gzip file or is truncated' : 'could not be read';
    throw new DataError(`${label} ${what} (after line ${line}): ${failure.message}`);
  }
}

/** Streams the lines of a plain or gzip (`.gz`) file without loading it whole. */
export function readLines(file: string): AsyncGenerator<{ text: string; line: number }> {
  const raw = createReadStream(file);
  return linesOf(file.endsWith('.gz') ? pipeErrors(raw, createGunzip(), file) : raw, file);
}

/** raw -> gunzip, with errors of either side reaching the consumer. */
function pipeErrors(raw: Readable, gunzip: ReturnType<typeof createGunzip>, file: string): Readable {
  raw.on('error', (e) => gunzip.destroy(new Error(`${file}: ${e.message}`)));
  return raw.pipe(gunzip);
}

/**
 * The entries of a `.tar.gz` archive, in archive order, that `accept` wants, each with its
 * lines streamed (the archive is read once, never unpacked to disk).
 */
export async function* tarGzEntries(
  archive: string,
  accept: (name: string) => boolean,
): AsyncGenerator<{ name: string; size: number; lines: AsyncGenerator<{ text: string; line: number }> }> {
  const raw = createReadStream(archive);
  const gunzip = createGunzip();
  const tar = extract();
  let failure: Error | undefined;
  const fail = (e: Error) => {
    failure ??= e;
    tar.destroy(e);
  };
  raw.on('error', fail);
  gunzip.on('error', fail);
  raw.pipe(gunzip).pipe(tar);
  try {
    for await (const entry of tar) {
      const name = entry.header.name;
      if (entry.header.type === 'file' && accept(name)) {
        const lines = linesOf(entry as unknown as Readable, `${archive}: ${name}`);
        yield { name, size: entry.header.size ?? 0, lines };
        // drain whatever the consumer did not read
        for await (const _ of lines) void _;
      } else {
        entry.resume();
      }
    }
  } catch (e) {
    if (e instanceof DataError) throw e;
    failure ??= e as Error;
  }
  if (failure) throw new DataError(`${archive} is not a valid .tar.gz archive or is truncated: ${failure.message}`);
}
