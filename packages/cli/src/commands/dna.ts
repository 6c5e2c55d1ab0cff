import { dModel as dModelFlag, didYouMean } from '../flags.js';
import { DEFAULT_RUN_SETTINGS } from '@primer-search/study';
import { type Command } from 'commander';
import { Rng } from '@primer-search/core';
import {
  DnaParseError,
  canonicalDna,
  dnaChanges,
  dnaHash,
  formatDna,
  mutateDna,
  parseJson,
  shortHash,
  validateDna,
  type Dna,
  type DnaAnalysis,
} from '@primer-search/dna';
import { baselines } from '@primer-search/baselines';
import { generateBlockModule } from '@primer-search/compiler';
import { UsageError, readInput, type CliIo } from '../io.js';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { isPrimerError } from '@primer-search/core';
import { alignColumns, dnaDiff, jsonText } from '../format.js';

/** Exit status of a command that ran: 0 for success, 1 when the input is not a valid DNA. */
export interface CommandResult {
  exitCode: number;
}

import { integer } from '../flags.js';

export { integer };

/** The width a baseline is built at unless --d-model says otherwise: the same as train's and search's, so a hash shown is the trained model's. */
export const DEFAULT_D_MODEL = DEFAULT_RUN_SETTINGS.dModel;

/**
 * Reads and validates a DNA file, or builds a registered baseline when `file` names one and
 * no such file exists. DNA problems come back as a message; unreadable input throws UsageError.
 */
export function loadDna(
  io: CliIo,
  file: string,
  dModel = DEFAULT_D_MODEL,
  heads?: number,
  /** The flag that named the file, put in front of a usage error. */
  flag?: string,
): { ok: true; dna: Dna; analysis: DnaAnalysis } | { ok: false; message: string } {
  try {
    return readDna(io, file, dModel, heads);
  } catch (e) {
    if (flag && e instanceof UsageError) throw new UsageError(`${flag}: ${e.message}`);
    throw e;
  }
}

function readDna(io: CliIo, file: string, dModel: number, heads: number | undefined): { ok: true; dna: Dna; analysis: DnaAnalysis } | { ok: false; message: string } {
  let text: string;
  try {
    text = readInput(io, file);
  } catch (e) {
    if (e instanceof UsageError && baselines.has(file)) {
      const r = validateDna(baselines.get(file).build({ dModel, heads }), { source: file });
      return r.ok ? r : { ok: false, message: r.error.message };
    }
    if (e instanceof UsageError && !file.includes('/') && !file.includes('.')) {
      throw new UsageError(`${e.message}, and no baseline is called that${didYouMean(file, baselines.names())}; baselines: ${baselines.names().join(', ')}`);
    }
    throw e;
  }
  try {
    const r = validateDna(parseJson(text, file), { source: file });
    return r.ok ? r : { ok: false, message: r.error.message };
  } catch (e) {
    if (e instanceof DnaParseError) return { ok: false, message: e.message };
    throw e;
  }
}

const D_MODEL_HELP = `model width a baseline name is built for (sets its attention scale; default ${DEFAULT_D_MODEL})`;

function counts(dna: Dna, analysis: DnaAnalysis) {
  const total = dna.subprograms.reduce((a, s) => a + s.instructions.length, 0);
  const live = analysis.live.reduce((a, s, i) => a + (analysis.used[i] ? s.filter(Boolean).length : 0), 0);
  return { subprograms: dna.subprograms.length, instructions: total, live };
}

/** `child.json` -> `child-3.json` (or `{i}` in the name replaced by the index). */
export function numberedPath(path: string, index: number): string {
  if (path.includes('{i}')) return path.replaceAll('{i}', String(index));
  const m = /^(.*?)(\.[^./\\]+)?$/.exec(path)!;
  return `${m[1]}-${index}${m[2] ?? ''}`;
}

export function dnaCommand(program: Command, io: CliIo, result: CommandResult): void {
  const dna = program
    .command('dna')
    .description('Work with DNA files: Transformer blocks written as programs of primitives (see docs/dna.md).');

  dna
    .command('validate')
    .description('Check DNA files: schema, ops, indices, call order and shapes. Exit 0 if all are valid, 1 if any is not, 2 on usage errors.')
    .argument('<files...>', 'DNA JSON files ("-" reads standard input) or baseline names (see `primer baselines`)')
    .option('--json', 'print one JSON object per file')
    .option('--d-model <n>', D_MODEL_HELP, dModelFlag)
    .action((files: string[], opts: { json?: boolean; dModel?: number }) => {
      for (const file of files) {
        const r = loadDna(io, file, opts.dModel);
        if (r.ok) {
          const hash = dnaHash(r.dna, { analysis: r.analysis });
          const c = counts(r.dna, r.analysis);
          io.stdout(
            opts.json
              ? jsonText({ file, valid: true, hash, ...c }, 0)
              : `${file}: valid · hash ${shortHash(hash)} · ${c.subprograms} subprograms, ${c.instructions} instructions (${c.live} live)\n`,
          );
        } else {
          result.exitCode = 1;
          if (opts.json) io.stdout(jsonText({ file, valid: false, error: r.message }, 0));
          else io.stderr(`${r.message}\n`);
        }
      }
    });

  dna
    .command('show')
    .description('Print a DNA as readable TensorFlow.js-like code, one line per instruction, with the width of every hidden state.')
    .argument('<file>', 'a DNA JSON file ("-" reads standard input) or a baseline name')
    .option('--no-dead', 'hide dead instructions (those that do not reach the output)')
    .option('--canonical', 'print the canonical form (what the hash is computed from) instead')
    .option('--d-model <n>', D_MODEL_HELP, dModelFlag)
    .action((file: string, opts: { dead: boolean; canonical?: boolean; dModel?: number }) => {
      const r = loadDna(io, file, opts.dModel);
      if (!r.ok) {
        io.stderr(`${r.message}\n`);
        result.exitCode = 1;
        return;
      }
      const shown = opts.canonical ? { ...canonicalDna(r.dna, { analysis: r.analysis }), name: r.dna.name } : r.dna;
      io.stdout(formatDna(shown, { showDead: opts.dead, ...(opts.canonical ? {} : { analysis: r.analysis }) }));
    });

  dna
    .command('export')
    .description('Write a DNA as a standalone TypeScript module (TensorFlow.js only) that builds the same block for a given size.')
    .argument('<file>', 'a DNA JSON file ("-" reads standard input) or a baseline name')
    .option('--d-model <n>', 'model width the module is generated for', dModelFlag, DEFAULT_D_MODEL)
    .option('--seq-len <n>', 'sequence length the module is generated for', integer('--seq-len', 1), 64)
    .option('--out <file>', 'write the module here instead of standard output')
    .action((file: string, opts: { dModel: number; seqLen: number; out?: string }) => {
      const r = loadDna(io, file, opts.dModel);
      if (!r.ok) {
        io.stderr(`${r.message}\n`);
        result.exitCode = 1;
        return;
      }
      const source = generateBlockModule(r.dna, { dModel: opts.dModel, seqLen: opts.seqLen });
      if (opts.out) {
        io.writeFile(opts.out, source);
        io.stderr(`wrote ${opts.out}\n`);
      } else {
        io.stdout(source);
      }
    });

  dna
    .command('changes')
    .description(
      "List the changes that make one program from another, and write each alone, inserted into the base and removed from the winner, as the paper took Primer apart (its Figure 26): " +
        'each subprogram whose code differs and each bank value that differs, among the parts the winner uses. Both must have the same layout, as a search\'s seed and its mutants do. ' +
        'Train the files beside the two programs (primer compare) to see what each change is worth.',
    )
    .argument('<base>', 'the program the changes are made to (a DNA file or a baseline name, e.g. vanilla: the search\'s seed)')
    .argument('<winner>', 'the program with the changes (a DNA file, e.g. from primer study dna)')
    .option('--out <dir>', 'write insert-<change>.json and remove-<change>.json here (made if missing)')
    .option('--d-model <n>', D_MODEL_HELP, dModelFlag)
    .option('--json', 'print the changes (label, hashes, validity, DNA of each variant) as JSON')
    .action((baseFile: string, winnerFile: string, opts: { out?: string; dModel?: number; json?: boolean }) => {
      // a baseline's bank depends on the width (its attention logits' scale): built at another width than the winner's, it would differ in that alone
      const named = [baseFile, winnerFile].filter((f) => baselines.has(f) && !existsSync(f));
      if (named.length && opts.dModel === undefined) {
        throw new UsageError(`--d-model: ${named.join(' and ')} ${named.length > 1 ? 'are baselines' : 'is a baseline'}, whose constants depend on the width (the attention logits' scale): give the width the winner was searched at (e.g. --d-model 128), or a DNA file`);
      }
      const loaded = [loadDna(io, baseFile, opts.dModel), loadDna(io, winnerFile, opts.dModel)];
      for (const r of loaded) {
        if (!r.ok) {
          io.stderr(`${r.message}\n`);
          result.exitCode = 1;
          return;
        }
      }
      const [base, winner] = loaded as Array<{ ok: true; dna: Dna }>;
      let c: ReturnType<typeof dnaChanges>;
      try {
        c = dnaChanges(base!.dna, winner!.dna);
      } catch (e) {
        if (!isPrimerError(e)) throw e;
        io.stderr(`${e.message}\n`);
        result.exitCode = 1;
        return;
      }
      // each variant once: one that is the base, the winner or an earlier variant is said to be that, and not written again
      const seen = new Map<string, string>([[c.baseHash, 'the base'], [c.winnerHash, 'the winner']]);
      const variants = c.changes.flatMap((x) =>
        (['insert', 'remove'] as const).map((way) => {
          const v = way === 'insert' ? x.inserted : x.removed;
          const name = `${way}-${x.slug}`;
          const same = v.valid ? seen.get(v.hash) : undefined;
          if (v.valid && !same) seen.set(v.hash, name);
          return { change: x, way, name, variant: v, same };
        }),
      );
      const files: string[] = [];
      if (opts.out) {
        try {
          mkdirSync(opts.out, { recursive: true });
        } catch (e) {
          throw new UsageError(`--out: cannot make the folder ${opts.out}: ${(e as Error).message}`);
        }
        for (const v of variants) {
          if (!v.variant.valid || v.same) continue;
          const path = join(opts.out, `${v.name}.json`);
          io.writeFile(path, jsonText({ ...v.variant.dna, name: v.name }));
          files.push(path);
        }
      }
      if (opts.json) {
        io.stdout(jsonText({ base: baseFile, winner: winnerFile, baseHash: c.baseHash, winnerHash: c.winnerHash, changes: c.changes, same: Object.fromEntries(variants.filter((v) => v.same).map((v) => [v.name, v.same])), files }));
        return;
      }
      const cell = (v: (typeof variants)[number]) => (!v.variant.valid ? `invalid: ${v.variant.error}` : v.same ? `= ${v.same}` : shortHash(v.variant.hash));
      io.stdout(`${c.changes.length} change${c.changes.length === 1 ? '' : 's'} from ${baseFile} (hash ${shortHash(c.baseHash)}) to ${winnerFile} (hash ${shortHash(c.winnerHash)})\n\n`);
      if (c.changes.length) {
        io.stdout(`${alignColumns([['change', 'what', 'inserted into the base', 'removed from the winner'], ...c.changes.map((x, k) => [x.slug, x.label, cell(variants[2 * k]!), cell(variants[2 * k + 1]!)])])}\n`);
        for (const x of c.changes.filter((y) => y.unit.kind === 'subprogram')) {
          io.stdout(`\n${x.slug}, inserted into the base (- base, + with the change):\n${x.inserted.valid ? dnaDiff(base!.dna, x.inserted.dna, 'base') : `  not a valid program alone: ${x.inserted.error}\n`}`);
        }
        io.stdout(
          '\nA change is a subprogram\'s whole code (or one bank value): one that reads another argument than the base\'s reads what its callers pass there, so moving it can re-wire the block; ' +
            "and code dead in one program can come alive in a variant. Read each variant's diff before reading its perplexity.\n",
        );
      }
      if (files.length) {
        const quoted = (f: string) => (/^[\w./-]+$/.test(f) ? f : `'${f.replace(/'/g, `'\\''`)}'`);
        io.stdout(
          `\nwrote ${files.length} program${files.length === 1 ? '' : 's'} to ${opts.out}; to measure each change (3 seeds for intervals), with the settings the winner was searched at:\n` +
            `  primer compare --models ${[baseFile, winnerFile, ...files].map(quoted).join(',')} --seeds 3${opts.dModel !== undefined ? ` --d-model ${opts.dModel}` : ''} --budget ... --tokenizer ... --seq-len ...\n`,
        );
      }
    });

  dna
    .command('mutate')
    .description(
      "Make children of a DNA with the paper's mutations (delete, insert, delete+insert, change a field, swap, change a bank value), seeded. " +
        'A child that computes the same program as its parent is mutated again.',
    )
    .argument('<file>', 'the parent DNA JSON file ("-" reads standard input) or a baseline name')
    .option('--d-model <n>', D_MODEL_HELP, dModelFlag)
    .requiredOption('--seed <n>', 'random seed (same seed, same children)', integer('--seed', 0))
    .option('--count <k>', 'how many children', integer('--count', 1), 1)
    .option('--chain', 'each child is a mutation of the previous one (a random walk) instead of the parent')
    .option('--allow-invalid', 'keep children that fail validation (by default a mutation is redrawn until the child is valid)')
    .option('--out <path>', 'write children as DNA files: PATH for one child; PATH-1, PATH-2... (or {i} in PATH) for several')
    .option('--show', 'print each child as code')
    .option('--json', 'print the children (DNA, hash, mutations, validity) as a JSON array')
    .action(
      (
        file: string,
        opts: {
          seed: number;
          count: number;
          chain?: boolean;
          allowInvalid?: boolean;
          out?: string;
          show?: boolean;
          json?: boolean;
          dModel?: number;
        },
      ) => {
        const parent = loadDna(io, file, opts.dModel);
        if (!parent.ok) {
          io.stderr(`${parent.message}\n`);
          result.exitCode = 1;
          return;
        }
        const rng = Rng.create(opts.seed);
        const parentHash = dnaHash(parent.dna, { analysis: parent.analysis });
        const out: unknown[] = [];
        let current = parent.dna;
        if (!opts.json) io.stdout(`parent ${file} · hash ${shortHash(parentHash)}\n`);
        for (let i = 1; i <= opts.count; i++) {
          const r = mutateDna(current, rng, { requireValid: !opts.allowInvalid });
          const path = opts.out ? (opts.count === 1 ? opts.out : numberedPath(opts.out, i)) : undefined;
          if (path) io.writeFile(path, jsonText(r.child));
          if (opts.json) {
            out.push({
              index: i,
              hash: r.childHash,
              parentHash: r.parentHash,
              valid: r.valid,
              error: r.error?.message,
              mutations: r.mutations,
              file: path,
              dna: r.child,
            });
          } else {
            const status = r.valid ? 'valid' : `INVALID: ${r.error!.issues[0]!.message}`;
            io.stdout(`child ${i} · hash ${shortHash(r.childHash)} · ${status}${path ? ` · wrote ${path}` : ''}\n`);
            for (const m of r.mutations) io.stdout(`    ${m.description}\n`);
            if (opts.show) io.stdout(`\n${formatDna(r.child)}\n`);
          }
          if (opts.chain && r.valid) current = r.child;
        }
        if (opts.json) io.stdout(jsonText(out));
      },
    );
}

