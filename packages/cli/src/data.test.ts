import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { openStudyStore } from '@primer-search/store';
import { runPrimer } from './__fixtures__/run.js';
import { writeTree } from '../../datasets/src/__fixtures__/lm1b.js';

const run = runPrimer;
const tmp = () => mkdtempSync(join(tmpdir(), 'primer-data-cli-'));
const TINY = ['--budget', '3steps', '--layers', '1', '--d-model', '16', '--heads', '2', '--seq-len', '8', '--batch', '2', '--eval-windows', '2'];

describe('primer data prepare, and training on LM1B and C4', () => {
  const data = writeTree(tmp());

  it('builds a token cache that train reads, and refuses one built with another tokenizer', async () => {
    const cache = join(tmp(), 'lm1b-byte');
    const r = await run(['data', 'prepare', '--dataset', 'lm1b', '--data-dir', data, '--out', cache]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^train: 4 documents, 127 tokens in 1 shard$/m);
    expect(r.stdout).toMatch(/^validation: 1 documents, 22 tokens in 1 shard$/m);
    expect((await run(['data', 'prepare', '--dataset', 'lm1b', '--data-dir', data, '--out', cache])).stderr).toMatch(/already holds a token cache; add --force/);

    const t = await run(['train', '--model', 'vanilla', '--dataset', 'lm1b', '--data-dir', data, '--cache', cache, ...TINY]);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stderr).toMatch(/127 training and 22 validation tokens, vocabulary 257, from the token cache .*lm1b-byte/);
    expect(t.stdout).toMatch(/validation +loss [\d.]+ nats\/token/);

    const other = await run(['train', '--model', 'vanilla', '--dataset', 'lm1b', '--data-dir', data, '--cache', cache, '--tokenizer', 'gpt2', ...TINY]);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/was built with the byte tokenizer \(byte-utf8-257\), not gpt2/);
  });

  it('builds the cache on first use when none is named, and trains in sentence mode', async () => {
    process.env.PRIMER_CACHE_DIR = tmp();
    const first = await run(['train', '--model', 'vanilla', '--dataset', 'lm1b', '--data-dir', data, '--batch-mode', 'sentence', ...TINY]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(new RegExp(`from the token cache ${process.env.PRIMER_CACHE_DIR}/tokens/lm1b-byte-`));
    const search = await run(['search', '--dataset', 'lm1b', '--data-dir', data, '--candidates', '2', '--budget-per-candidate', '2steps', ...TINY.slice(2), '--workers', '1', '--study', join(tmp(), 's.sqlite')]);
    expect(search.code, search.stderr).toBe(0);
    expect(search.stdout).toMatch(/candidates 2 proposed, 2 told/);
  });

  it('reports a bad C4 line by file and line, or skips it with --skip-bad-lines', async () => {
    const dir = tmp();
    const line = (text: string, i: number) => JSON.stringify({ text, timestamp: '2019-04-25T12:57:54Z', url: `https://example.com/${i}` });
    writeFileSync(join(dir, 'c4-train.00000-of-01024.json.gz'), gzipSync([line('A first document with some text.', 1), 'oops', line('Another document.', 2)].join('\n')));
    writeFileSync(join(dir, 'c4-validation.00000-of-00008.json.gz'), gzipSync(line('The validation document is here.', 3)));
    const bad = await run(['data', 'prepare', '--dataset', 'c4', '--data-dir', dir, '--out', join(tmp(), 'c')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/c4-train\.00000-of-01024\.json\.gz:2: not JSON .*add --skip-bad-lines/);
    const out = join(tmp(), 'c4');
    const ok = await run(['data', 'prepare', '--dataset', 'c4', '--data-dir', dir, '--out', out, '--skip-bad-lines']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/1 bad lines skipped/);
    expect(existsSync(join(out, 'manifest.json'))).toBe(true);
    const trained = await run(['train', '--model', 'vanilla', '--dataset', 'c4', '--data-dir', dir, '--cache', out, ...TINY]);
    expect(trained.code, trained.stderr).toBe(0);
    expect(trained.stderr).toMatch(/from the token cache .*c4 \(1 bad lines skipped\)/);
  });

  it('trains on a text folder named by a relative path, recorded as absolute, and prepare wants its --data-dir', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'train.txt'), Array.from({ length: 40 }, (_, i) => `Document ${i} has a line.\nAnd a second line.`).join('\n\n'));
    writeFileSync(join(dir, 'validation.txt'), 'A held-out document.\n\nAnother one, held out too.');
    process.env.PRIMER_CACHE_DIR = tmp();
    const t = await run(['train', '--model', 'vanilla', '--dataset', 'text', '--data-dir', relative(process.cwd(), dir), ...TINY, '--json']);
    expect(t.code, t.stderr).toBe(0);
    const out = JSON.parse(t.stdout);
    expect(out.settings.dataDir).toBe(dir);
    // byte tokens, each document ended by a separator: 10 documents of 41 bytes and 30 of 42; 20 and 26 bytes held out
    expect(out.data).toEqual({ trainTokens: 10 * 42 + 30 * 43, validationTokens: 21 + 27, vocabSize: 257 });
    const noDir = await run(['data', 'prepare', '--dataset', 'text', '--out', join(tmp(), 'c')]);
    expect(noDir.code).toBe(2);
    expect(noDir.stderr).toMatch(/--dataset text reads files you keep: give --data-dir DIR/);
  });

  it('records the data a study began with, and refuses to resume or retrain it on changed files', async () => {
    const dir = tmp();
    const doc = (i: number) => `Study document ${i} says something about item ${i % 5}.`;
    writeFileSync(join(dir, 'train.txt'), Array.from({ length: 60 }, (_, i) => doc(i)).join('\n\n'));
    writeFileSync(join(dir, 'validation.txt'), 'Held out text.\n\nMore held out text.');
    process.env.PRIMER_CACHE_DIR = tmp();
    const study = join(tmp(), 's.sqlite');
    const args = ['--dataset', 'text', '--data-dir', dir, '--tokenizer', 'bpe', '--vocab-size', '280', '--budget-per-candidate', '2steps', ...TINY.slice(2), '--workers', '1', '--study', study];
    const first = await run(['search', '--candidates', '2', ...args]);
    expect(first.code, first.stderr).toBe(0);
    const store = await openStudyStore(study, { readonly: true });
    const data = ((await store.config()) as { data?: unknown }).data;
    await store.close();
    expect(data).toEqual({ tokenizer: expect.stringMatching(/^bpe-/), trainTokens: expect.any(Number), validationTokens: expect.any(Number) });
    // the same files: it goes on
    const again = await run(['search', '--resume', '--candidates', '3', '--study', study, '--workers', '1']);
    expect(again.code, again.stderr).toBe(0);
    // changed training text: another vocabulary, other counts; refused before anything trains (in
    // new processes, as a resume is: a process keeps the data it prepared)
    writeFileSync(join(dir, 'train.txt'), Array.from({ length: 60 }, (_, i) => doc(i * 7)).join('\n\n'));
    const changed = primerProcess(['search', '--resume', '--candidates', '4', '--study', study, '--workers', '1']);
    expect(changed.status).toBe(2);
    expect(changed.stderr).toMatch(/began with other data than text in .* gives now \(the bpe tokenizer is bpe-\S+ now, bpe-\S+ then.*\): restore the files it began with, or start a new study/);
    const retrain = primerProcess(['study', 'retrain', study, '--top', '1', '--seeds', '1', '--workers', '1']);
    expect(retrain.status).toBe(2);
    expect(retrain.stderr).toMatch(/began with other data than text/);
  }, 120_000);
});

/** The primer CLI from source in a process of its own. */
function primerProcess(args: string[]): { status: number | null; stderr: string } {
  const root = fileURLToPath(new URL('../../..', import.meta.url));
  const r = spawnSync(process.execPath, ['--conditions=@primer-search/source', '--import', 'tsx', 'tools/primer-dev.ts', ...args], { cwd: root, encoding: 'utf8', env: process.env });
  return { status: r.status, stderr: r.stderr };
}
