// --config FILE: a command's settings from a JSON or YAML file, so a long experiment is one file
// in a repository. The keys are the flags' long names (budget-per-candidate, or budgetPerCandidate);
// each value goes through the flag's own parser, so it is checked with the flag's message,
// prefixed with the file and the key. Flags on the command line override the file: the file's
// settings are put in front of them (a repeatable flag such as --plugin adds to the file's).
import { extname } from 'node:path';
import { InvalidArgumentError, type Command, type Option } from 'commander';
import { parse as parseYaml } from 'yaml';
import { quote } from '@primer-search/core';
import { didYouMean } from './flags.js';
import { readInput, UsageError, type CliIo } from './io.js';

const kebab = (key: string) => key.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`);

/** The settings file's flags, for the command `argv` names: `argv` without --config, the file's flags in front. */
export function expandConfig(argv: string[], program: Command, io: CliIo): string[] {
  const at = argv.findIndex((a) => a === '--config' || a.startsWith('--config='));
  if (at < 0) return argv;
  if (argv.slice(at + 1).some((a) => a === '--config' || a.startsWith('--config='))) throw new UsageError('--config: give one settings file (put everything in it, or give the rest as flags)');
  // the command: the words before the first flag (search; study retrain)
  let command: Command | undefined = program;
  let depth = 0;
  while (depth < argv.length && !argv[depth]!.startsWith('-')) {
    const next: Command | undefined = command.commands.find((c) => c.name() === argv[depth]);
    if (!next) break;
    command = next;
    depth++;
  }
  if (!command.options.some((o) => o.long === '--config')) return argv; // commander says the flag is unknown
  const file = argv[at]!.startsWith('--config=') ? argv[at]!.slice('--config='.length) : argv[at + 1];
  if (!file || file.startsWith('-')) throw new UsageError('--config needs a file: a JSON or YAML file of settings');
  const rest = [...argv.slice(0, at), ...argv.slice(at + (argv[at]!.includes('=') ? 1 : 2))];
  return [...rest.slice(0, depth), ...configFlags(io, file, command), ...rest.slice(depth)];
}

/** The flags a settings file stands for, each value checked by its flag's parser. */
export function configFlags(io: CliIo, file: string, command: Command): string[] {
  let text: string;
  try {
    text = readInput(io, file);
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(`--config: ${e.message}`);
    throw e;
  }
  let data: unknown;
  const ext = extname(file).toLowerCase();
  try {
    data = ext === '.yaml' || ext === '.yml' ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--config ${file}: cannot read it as ${ext === '.yaml' || ext === '.yml' ? 'YAML' : 'JSON'}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new UsageError(`--config ${file}: expected an object of settings (flag names as keys), got ${Array.isArray(data) ? 'a list' : data === null ? 'nothing' : typeof data}`);
  const longs = command.options.map((o) => o.long!).filter((l) => l && l !== '--config' && l !== '--help');
  const settings = longs.map((l) => l.replace(/^--(no-)?/, ''));
  const flags: string[] = [];
  const seen = new Map<string, string>();
  for (const [key, value] of Object.entries(data)) {
    const name = kebab(key);
    const where = `--config ${file}: ${quote(key)}`;
    if (seen.has(name)) throw new UsageError(`${where} sets what ${quote(seen.get(name)!)} already set: keep one`);
    seen.set(name, key);
    const option = command.options.find((o) => o.long === `--${name}`);
    const negated = command.options.find((o) => o.long === `--no-${name}`);
    if (!option && !negated) {
      throw new UsageError(`${where} is not a setting of primer ${command.name()}${didYouMean(name, settings)}; settings are the flags' long names: ${settings.join(', ')}`);
    }
    if (name === 'config') throw new UsageError(`${where}: a settings file cannot name another`);
    const flagOf = (o: Option) => o.long!;
    if (typeof value === 'boolean') {
      const target = value ? (option && !option.required && !option.optional ? option : undefined) : negated;
      if (value && !target) throw new UsageError(`${where}: ${option ? `${option.long} takes a value, not true` : `write ${name}: false or leave it out`}`);
      if (!value && !target) throw new UsageError(`${where}: false is not a value of ${option!.long}${option!.required ? ' (it takes a value)' : '; leave it out'}`);
      flags.push(flagOf(target!));
      continue;
    }
    if (!option || !(option.required || option.optional)) throw new UsageError(`${where}: ${option?.long ?? `--no-${name}`} is a switch: write true or false`);
    // a repeatable flag collects into a list that starts empty (--plugin, --strategy-option); a list-valued one (--hurdles 0.25,0.5) takes one comma-separated value
    const repeatable = Array.isArray(option.defaultValue) && option.defaultValue.length === 0;
    const values = Array.isArray(value) ? (repeatable ? value : [value.join(',')]) : [value];
    for (const v of values) {
      if (v === null || (typeof v !== 'string' && typeof v !== 'number')) throw new UsageError(`${where}: expected a string or a number, got ${v === null ? 'null' : typeof v}`);
      const text = String(v);
      // a value is a value: one that looks like a flag would be read as one
      if (text.startsWith('--')) throw new UsageError(`${where}: ${quote(text)} looks like a flag, not a value`);
      // the flag's own checks, with its own message
      if (option.argChoices && !option.argChoices.includes(text)) throw new UsageError(`${where}: ${quote(text)} is not one of ${option.argChoices.join(', ')}`);
      try {
        option.parseArg?.(text, option.defaultValue as never);
      } catch (e) {
        if (e instanceof InvalidArgumentError) throw new UsageError(`${where}: ${e.message}`);
        throw e;
      }
      flags.push(option.long!, text);
    }
  }
  return flags;
}
