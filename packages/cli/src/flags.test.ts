import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { PrimerError } from '@primer-search/core';
import { describe, expect, it } from 'vitest';
import { runPrimer as run } from './__fixtures__/run.js';
import { duration } from './format.js';
import { exitCodeOf } from './flags.js';
import { settingsOf } from './commands/train.js';
import { UsageError, buildProgram } from './index.js';

/** A value each flag refuses. Every flag that takes a value is here or in FREE (a test checks). */
const BAD: Record<string, string> = {
  '--d-model': '100',
  '--seq-len': '0',
  '--seed': '-1',
  '--count': '0',
  '--model': 'no-such-model',
  '--seed-model': 'no-such-model',
  '--models': 'vanilla,no-such-model',
  '--dataset': 'nope',
  '--data-dir': '/no/such/folder',
  '--tokenizer': 'nope',
  '--vocab-size': '10',
  '--tokenizer-model': '/no/such/spiece.model',
  '--batch-mode': 'shuffled',
  '--budget': 'soon',
  '--budget-per-candidate': 'soon',
  '--layers': '0',
  '--heads': '3',
  '--batch': '0',
  '--optimizer': 'sgd',
  '--lr': 'fast',
  '--warmup': '-1',
  '--clip': '-1',
  '--eval-windows': '0',
  '--backend': 'cuda',
  '--data-parallel': '0',
  '--strategy': 'nope',
  '--candidates': '0',
  '--workers': '-1',
  '--in-flight': '0',
  '--concurrency': '0',
  '--poll': 'often',
  '--population': '1',
  '--tournament': '0',
  '--strategy-option': 'novalue',
  '--hurdles': '2',
  '--hurdle-min-samples': '0',
  '--candidate-timeout': '5steps',
  '--plugin': './no/such/plugin.js',
  '--top': '-1',
  '--retrain': '0',
  '--baselines': 'primer-ez,no-such-model',
  '--run-timeout': '5steps',
  '--code': '-1',
  '--splits': 'train,nope',
  '--shard-tokens': '5',
  '--tokens': '0',
  '--temperature': 'hot',
  '--top-k': '-1',
  '--candidate': '-1',
  '--port': '70000',
  '--format': 'jpeg',
  '--seeds': '0',
  '--against': '',
  '--labels': 'a,b',
  '--delete': '0',
  '--config': './no/such/settings.yaml',
  '--keep-weights': '-1',
  '--mqar-pairs': '0',
  '--objectives': 'perplexity,nope',
  '--constraint': 'perplexity<=100',
  '--sample': '1',
  '--factor': '0',
  '--reuse-from': './no/such/study.sqlite',
  '--checkpoint-every': 'never',
};
/** Flags whose every value is a valid command line (paths that are written, or may not exist yet). */
const FREE = new Set(['--out', '--csv', '--study', '--cache', '--checkpoint', '--save', '--prompt', '--host', '--allow-host']);

/** What each command needs besides the flag under test. */
const tmp = mkdtempSync(join(tmpdir(), 'primer-flags-'));
const BASE: Record<string, string[]> = {
  baselines: [],
  'dna validate': ['vanilla'],
  'dna show': ['vanilla'],
  'dna export': ['vanilla'],
  'dna mutate': ['vanilla', '--seed', '1'],
  'dna changes': ['vanilla', 'vanilla'],
  train: ['--model', 'vanilla', '--budget', '1steps'],
  compare: ['--models', 'vanilla', '--budget', '1steps'],
  search: ['--study', join(tmp, 'never.sqlite'), '--candidates', '1', '--budget-per-candidate', '1steps'],
  'study show': [join(tmp, 'never.sqlite')],
  'study dna': [join(tmp, 'never.sqlite'), '0'],
  'study retrain': [join(tmp, 'never.sqlite')],
  'study fidelity': [join(tmp, 'never.sqlite')],
  'study ablate': [join(tmp, 'never.sqlite'), '0'],
  'study curves': [join(tmp, 'never.sqlite')],
  ablate: ['--model', 'vanilla', '--budget', '1steps'],
  'data prepare': ['--dataset', 'brown', '--out', join(tmp, 'cache')],
  worker: ['--study', 'postgres://nobody@127.0.0.1:1/none'],
  generate: ['--model', join(tmp, 'no-model'), '--prompt', 'The'],
  dashboard: ['--study', join(tmp, 'never.sqlite')],
  'study report': [join(tmp, 'never.sqlite'), '--out', join(tmp, 'report.html')],
  export: ['--checkpoint', join(tmp, 'no-checkpoint'), '--model', 'vanilla', '--out', join(tmp, 'export')],
};

function valueFlags(): Array<{ command: string; flag: string }> {
  const out: Array<{ command: string; flag: string }> = [];
  const walk = (c: Command, path: string[]) => {
    for (const o of c.options) if ((o.required || o.optional) && o.long) out.push({ command: path.join(' '), flag: o.long });
    for (const s of c.commands) walk(s, [...path, s.name()]);
  };
  walk(buildProgram({ stdout: () => {}, stderr: () => {}, readFile: () => '', writeFile: () => {} }, { exitCode: 0 }), []);
  return out;
}

describe('exit statuses: one rule for every command', () => {
  it('exitCodeOf: 2 for the command line, 1 for what it points at', () => {
    expect(exitCodeOf(new UsageError('x'))).toBe(2);
    expect(exitCodeOf(new PrimerError('DNA_INVALID', 'x'))).toBe(1);
    expect(() => exitCodeOf(new TypeError('a bug'))).toThrow('a bug');
  });

  it('every flag that takes a value is covered by this test', () => {
    const missing = valueFlags().filter(({ flag }) => !(flag in BAD) && !FREE.has(flag));
    expect(missing).toEqual([]);
    for (const { command } of valueFlags()) expect(BASE[command], command).toBeDefined();
  });

  it('a value a flag cannot take exits 2 on every command, naming the flag, before any work', async () => {
    const wrong: string[] = [];
    for (const { command, flag } of valueFlags().filter(({ flag }) => flag in BAD)) {
      const args = [...command.split(' '), ...BASE[command]!.filter((_, i, a) => a[i] !== flag && a[i - 1] !== flag), flag, BAD[flag]!];
      const r = await run(args);
      const named = r.stderr.includes(flag) || (flag === '--population' && r.stderr.includes('--population/--tournament'));
      if (r.code !== 2 || !named) wrong.push(`${args.join(' ')} -> exit ${r.code}: ${r.stderr.split('\n')[0]}`);
    }
    expect(wrong).toEqual([]);
    expect(existsSync(join(tmp, 'never.sqlite'))).toBe(false);
  }, 120_000);

  it('--tournament larger than --population is refused; --workers beyond memory is refused, beyond the cores warned about', async () => {
    const study = join(tmp, 's.sqlite');
    const t = await run(['search', '--study', study, '--population', '6', '--tournament', '10']);
    expect(t.code).toBe(2);
    expect(t.stderr).toContain('tournamentSize (10) cannot be larger than populationSize (6)');
    const w = await run(['search', '--study', study, '--workers', '100000']);
    expect(w.code).toBe(2);
    expect(w.stderr).toMatch(/--workers 100000: each worker process needs about 400 MiB/);
    expect(existsSync(study)).toBe(false);
  });
});

describe('duration', () => {
  it('rounds as a whole: never "3m 60s"', () => {
    expect(duration(239.6)).toBe('4m 00s');
    expect(duration(59.97)).toBe('1m 00s');
    expect(duration(42.54)).toBe('42.5s');
    expect(duration(185)).toBe('3m 05s');
    expect(duration(3599.6)).toBe('1h 00m');
    expect(duration(7620)).toBe('2h 07m');
  });
});

describe('the run settings a command records', () => {
  it('hold the data folder, the token cache and the tokenizer model as absolute paths, so a study resumed from another folder reads the same files', () => {
    const o = { dataset: 'text', tokenizer: 'sentencepiece', dataDir: 'corpus', cache: 'cache', tokenizerModel: join('models', 'spiece.model') } as unknown as Parameters<typeof settingsOf>[0];
    const s = settingsOf(o, []);
    expect([s.dataDir, s.cache, s.tokenizerModel]).toEqual([join(process.cwd(), 'corpus'), join(process.cwd(), 'cache'), join(process.cwd(), 'models', 'spiece.model')]);
    const none = settingsOf({ ...o, dataDir: undefined, cache: undefined, tokenizerModel: undefined }, []);
    expect([none.dataDir, none.cache, none.tokenizerModel]).toEqual([undefined, undefined, undefined]);
  });
});
