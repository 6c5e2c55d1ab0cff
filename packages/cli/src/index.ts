import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { Command, CommanderError } from 'commander';
import { baselinesCommand } from './commands/baselines.js';
import { ablateCommand } from './commands/ablate.js';
import { compareCommand, trainCommand } from './commands/train.js';
import { exportCommand, generateCommand } from './commands/model.js';
import { dashboardCommand } from './commands/dashboard.js';
import { dataCommand } from './commands/data.js';
import { dnaCommand, type CommandResult } from './commands/dna.js';
import { primitivesCommand } from './commands/primitives.js';
import { searchCommand, studyCommand } from './commands/search.js';
import { workerCommand } from './commands/worker.js';
import { exitCodeOf } from './flags.js';
import { expandConfig } from './config.js';
import { writeWhole, type CliIo } from './io.js';
import { terminalText } from './format.js';
import { redactSecrets, setReconnectNotice } from '@primer-search/store';

export { UsageError, type CliIo } from './io.js';
export { exitCodeOf } from './flags.js';
export { numberedPath } from './commands/dna.js';

const VERSION = '0.1.0';

export const nodeIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  readFile: (p) => readFileSync(p === '-' ? 0 : p, 'utf8'),
  writeFile: (p, t) => writeWhole(p, t),
  interactive: Boolean(process.stderr.isTTY),
  confirm: process.stdin.isTTY
    ? async (question) => {
        const rl = createInterface({ input: process.stdin, output: process.stderr });
        try {
          return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
        } finally {
          rl.close();
        }
      }
    : undefined,
};

/**
 * `io` with every URL's password masked in the messages it writes (`redactSecrets`, by
 * pattern): messages print masked locations, and this catches what still quotes a URL whole (a
 * driver's error, a library's message); and with control and direction characters escaped
 * (`terminalText`), whatever the text came from. Files written on request (--out) are the
 * command's data, written as they are (JSON with the same characters escaped inside its strings,
 * `jsonText`): they hold masked locations only.
 */
export function redactingIo(io: CliIo): CliIo {
  const shown = (t: string) => terminalText(redactSecrets(t));
  return {
    ...io,
    stdout: (t) => io.stdout(shown(t)),
    stderr: (t) => io.stderr(shown(t)),
    confirm: io.confirm && ((question) => io.confirm!(shown(question))),
  };
}

export function buildProgram(io: CliIo, result: CommandResult): Command {
  const program = new Command('primer')
    .description(
      'primer-search: evolve Transformer blocks written as programs of TensorFlow primitives, as in the Primer paper (So et al., 2021).',
    )
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride(); // subcommands inherit these settings
  primitivesCommand(program, io);
  baselinesCommand(program, io);
  dnaCommand(program, io, result);
  trainCommand(program, io, result);
  compareCommand(program, io, result);
  ablateCommand(program, io, result);
  exportCommand(program, io, result);
  generateCommand(program, io, result);
  searchCommand(program, io, result);
  studyCommand(program, io, result);
  dashboardCommand(program, io, result);
  workerCommand(program, io);
  dataCommand(program, io);
  program.addHelpText(
    'after',
    '\nExamples:\n' +
      '  primer primitives\n' +
      '  primer baselines\n' +
      '  primer dna show primer-ez\n' +
      '  primer dna validate examples/dna/vanilla.json\n' +
      '  primer dna show examples/dna/vanilla.json\n' +
      '  primer dna mutate examples/dna/vanilla.json --seed 1 --count 5 --chain\n' +
      '  primer train --model primer-ez --budget 2m\n' +
      '  primer compare --budget 2m\n' +
      '  primer train --model primer-ez --budget 2m --save models/primer-ez\n' +
      '  primer generate --model models/primer-ez --prompt "The jury said"\n' +
      '  primer export --study runs/demo.sqlite --candidate 7 --out models/candidate-7\n' +
      '  primer search --candidates 24 --budget-per-candidate 30s --workers 2 --study runs/demo.sqlite\n' +
      '  primer search --study runs/demo.sqlite --resume\n' +
      '  primer study show runs/demo.sqlite\n' +
      '  primer dashboard --study runs/demo.sqlite\n' +
      '  primer study report runs/demo.sqlite --out report.html\n' +
      '  primer data prepare --dataset lm1b --data-dir ~/data/lm1b --tokenizer gpt2 --out ~/data/lm1b-gpt2\n' +
      '\nExit status: 0 success; 1 invalid input (a DNA that does not validate, a damaged study, unreadable data) or failed work; 2 a wrong command line (an unknown flag, a value a flag cannot take, a path that does not exist).\n',
  );
  return program;
}

/**
 * Runs `primer` with `argv` (without the node and script names) and returns the exit
 * status: 0 success, 1 invalid input, 2 usage error. Never calls process.exit.
 */
export async function main(argv: string[], given: CliIo = nodeIo): Promise<number> {
  const io = redactingIo(given);
  // a database that goes away mid-run is waited for: said, not silent
  setReconnectNotice((line) => io.stderr(`${line}\n`));
  const result: CommandResult = { exitCode: 0 };
  const program = buildProgram(io, result);
  try {
    await program.parseAsync(expandConfig(argv, program, io), { from: 'user' });
    return result.exitCode;
  } catch (e) {
    const code = exitCodeOf(e);
    // commander has printed its own message (or the help)
    if (!(e instanceof CommanderError)) io.stderr(`primer: ${(e as Error).message}\n`);
    return code;
  }
}
