import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { LM1B_FIXTURE, writeTree } from './__fixtures__/lm1b.js';
import { c4, corpora, lm1b, lm1bSplitOf, prepareData, text, TEXT_DOCUMENT_CHARS, type Corpus, type Split, type TokenSource } from './index.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'primer-data-'));
const collect = async (corpus: Corpus, split: Split) => {
  const out: string[] = [];
  for await (const d of corpus.stream(split)) out.push(d.text);
  return out;
};

const TRAIN = 'training-monolingual.tokenized.shuffled';
const HELDOUT = 'heldout-monolingual.tokenized.shuffled';
const lm1bFiles = LM1B_FIXTURE;

async function tarGz(file: string, files: Record<string, string>) {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => void chunks.push(c as Buffer));
  const done = new Promise<void>((r) => p.on('end', () => r()));
  for (const [name, text] of Object.entries(files)) p.entry({ name: `1-billion-word-language-modeling-benchmark-r13output/${name}` }, text);
  p.finalize();
  await done;
  writeFileSync(file, gzipSync(Buffer.concat(chunks)));
}

describe('lm1b', () => {
  it('assigns shards to splits by the documented rule', () => {
    expect(lm1bSplitOf(`x/${TRAIN}/news.en-00042-of-00100`)).toBe('train');
    expect(lm1bSplitOf(`${HELDOUT}/news.en.heldout-00000-of-00050`)).toBe('validation');
    expect(lm1bSplitOf(`${HELDOUT}/news.en.heldout-00017-of-00050`)).toBe('test');
    expect(lm1bSplitOf(`${HELDOUT}/README`)).toBeUndefined();
  });

  it('reads the unpacked release, one sentence per document, non-ASCII intact', async () => {
    const dir = tmp();
    writeTree(dir, lm1bFiles);
    const corpus = corpora.get('lm1b').open({ dataDir: dir });
    expect(await collect(corpus, 'train')).toEqual(['The cat sat on the mat .', 'It was a sunny day .', 'Prices rose 3 % in May , officials said .', 'Café owners in Zürich were pleased .']);
    expect(await collect(corpus, 'validation')).toEqual(['A held-out sentence .']);
    expect(await collect(corpus, 'test')).toEqual(['A test sentence .']);
    expect(corpus.files!().map((f) => f.path.slice(dir.length + 1))).toHaveLength(4);
  });

  it('reads the same sentences straight from the .tar.gz', async () => {
    const dir = tmp();
    await tarGz(join(dir, '1-billion-word-language-modeling-benchmark-r13output.tar.gz'), lm1bFiles);
    const corpus = lm1b.open({ dataDir: dir });
    expect(await collect(corpus, 'train')).toHaveLength(4);
    expect(await collect(corpus, 'validation')).toEqual(['A held-out sentence .']);
  });

  it('names the path of a missing or empty shard, and a corrupt archive', async () => {
    const dir = tmp();
    writeTree(dir, { ...lm1bFiles, [`${HELDOUT}/news.en.heldout-00000-of-00050`]: '' });
    await expect(collect(lm1b.open({ dataDir: dir }), 'validation')).rejects.toThrow(/empty LM1B shard: .*news\.en\.heldout-00000-of-00050/);
    const other = tmp();
    writeTree(other, { [`${TRAIN}/news.en-00001-of-00100`]: 'x\n' });
    await expect(collect(lm1b.open({ dataDir: other }), 'validation')).rejects.toThrow(/missing LM1B validation shard: .*heldout-monolingual\.tokenized\.shuffled\/news\.en\.heldout-00000-of-00050/);
    expect(() => lm1b.open({ dataDir: tmp() })).toThrow(/no LM1B data in .*: expected training-monolingual/);
    expect(() => lm1b.open({})).toThrow(/give --data-dir/);
    const broken = tmp();
    const archive = join(broken, 'lm1b.tar.gz');
    await tarGz(archive, lm1bFiles);
    writeFileSync(archive, readFileSync(archive).subarray(0, 200));
    await expect(collect(lm1b.open({ dataDir: broken }), 'train')).rejects.toThrow(/lm1b\.tar\.gz/);
  });
});

const c4Line = (text: string, i: number) => JSON.stringify({ text, timestamp: '2019-04-25T12:57:54Z', url: `https://example.com/${i}` });

describe('c4', () => {
  const write = (dir: string, name: string, lines: string[]) => writeFileSync(join(dir, name), gzipSync(lines.join('\n') + '\n'));

  it('streams documents from the json.gz shards, in shard order', async () => {
    const dir = tmp();
    write(dir, 'c4-train.00001-of-01024.json.gz', [c4Line('Second shard.', 3)]);
    write(dir, 'c4-train.00000-of-01024.json.gz', [c4Line('First document.\nWith two lines.', 1), c4Line('Ünïcödé text — fine.', 2)]);
    write(dir, 'c4-validation.00000-of-00008.json.gz', [c4Line('Validation.', 4)]);
    const corpus = c4.open({ dataDir: dir });
    expect(await collect(corpus, 'train')).toEqual(['First document.\nWith two lines.', 'Ünïcödé text — fine.', 'Second shard.']);
    expect(await collect(corpus, 'validation')).toEqual(['Validation.']);
    await expect(collect(corpus, 'test')).rejects.toThrow(/C4 has no test split/);
  });

  it('reports a bad JSON line by file and line, or counts and skips it with skipBadLines', async () => {
    const dir = tmp();
    write(dir, 'c4-train.00000-of-01024.json.gz', [c4Line('ok', 1), '{"text": "unterminated', c4Line('ok too', 2), '{"url": "no text"}']);
    await expect(collect(c4.open({ dataDir: dir }), 'train')).rejects.toThrow(/c4-train\.00000-of-01024\.json\.gz:2: not JSON .*--skip-bad-lines/);
    const lenient = c4.open({ dataDir: dir, skipBadLines: true });
    expect(await collect(lenient, 'train')).toEqual(['ok', 'ok too']);
    expect(lenient.skipped!()).toBe(2);
  });

  it('reports a corrupt gzip by file', async () => {
    const dir = tmp();
    const good = gzipSync(Array.from({ length: 2000 }, (_, i) => c4Line(`document ${i} `.repeat(20), i)).join('\n'));
    writeFileSync(join(dir, 'c4-train.00000-of-01024.json.gz'), good.subarray(0, Math.floor(good.length / 2)));
    await expect(collect(c4.open({ dataDir: dir }), 'train')).rejects.toThrow(/c4-train\.00000-of-01024\.json\.gz is not a valid gzip file or is truncated \(after line \d+\)/);
    const bad = tmp();
    writeFileSync(join(bad, 'c4-train.00000-of-01024.json.gz'), 'this is not gzip at all');
    await expect(collect(c4.open({ dataDir: bad }), 'train')).rejects.toThrow(/is not a valid gzip file/);
    expect(() => c4.open({ dataDir: tmp() })).toThrow(/no C4 shards in/);
  });
});

describe('text', () => {
  it('reads documents separated by blank lines, plain or gzipped, with their file and line', async () => {
    const dir = tmp();
    // CRLF line ends, trailing spaces, several blank lines in a row, no blank line at the end
    writeFileSync(join(dir, 'train.txt'), 'First line.\r\nSecond line of it.  \r\n\r\n\r\nÜnïcödé — a second document.\r\n   \r\nThird.');
    writeFileSync(join(dir, 'validation.txt.gz'), gzipSync('\nHeld out.\nStill held out.\n'));
    const corpus = text.open({ dataDir: dir });
    const docs: Array<{ id: string; text: string }> = [];
    for await (const d of corpus.stream('train')) docs.push({ id: d.id, text: d.text });
    expect(docs).toEqual([
      { id: `${join(dir, 'train.txt')}:1`, text: 'First line.\nSecond line of it.' },
      { id: `${join(dir, 'train.txt')}:5`, text: 'Ünïcödé — a second document.' },
      { id: `${join(dir, 'train.txt')}:7`, text: 'Third.' },
    ]);
    expect(await collect(corpus, 'validation')).toEqual(['Held out.\nStill held out.']);
    expect(corpus.files!().map((f) => f.path)).toEqual([join(dir, 'train.txt'), join(dir, 'validation.txt.gz')]);
    expect(corpora.get('text').needsDataDir).toBe(true);
  });

  it('says which file is missing, doubled or empty, and refuses a split it does not have', async () => {
    expect(() => text.open({})).toThrow(/give --data-dir DIR/);
    expect(() => text.open({ dataDir: join(tmp(), 'nowhere') })).toThrow(/does not exist/);
    const dir = tmp();
    writeFileSync(join(dir, 'train.txt'), 'Some text.');
    expect(() => text.open({ dataDir: join(dir, 'train.txt') })).toThrow(/is not a folder/);
    expect(() => text.open({ dataDir: dir })).toThrow(/no validation\.txt or validation\.txt\.gz in .*test\.txt is optional/);
    writeFileSync(join(dir, 'validation.txt'), '\n\n  \n');
    const corpus = text.open({ dataDir: dir });
    await expect(collect(corpus, 'validation')).rejects.toThrow(/validation\.txt holds no text/);
    await expect(collect(corpus, 'test')).rejects.toThrow(/no test\.txt or test\.txt\.gz in .*no test split/);
    writeFileSync(join(dir, 'train.txt.gz'), gzipSync('Other text.'));
    expect(() => text.open({ dataDir: dir })).toThrow(/holds both train\.txt and train\.txt\.gz: keep one/);
  });

  it('drops a byte-order mark, cuts a document without blank lines at 1M characters, and checks its files before reading', async () => {
    const dir = tmp();
    const line = 'x'.repeat(999);
    // a first line, then 2,999 lines of 1,000 characters with their line ends, no blank line: a document is cut once it holds 1M (2^20) characters, after lines 1,050 and 2,099
    writeFileSync(join(dir, 'train.txt'), `\uFEFFFirst.\n${Array.from({ length: 2999 }, () => line).join('\n')}`);
    writeFileSync(join(dir, 'validation.txt'), '\uFEFFHeld out.');
    const corpus = text.open({ dataDir: dir });
    const docs: Array<{ id: string; chars: number; first: string }> = [];
    for await (const d of corpus.stream('train')) docs.push({ id: d.id.slice(dir.length + 1), chars: d.text.length, first: d.text.slice(0, 6) });
    expect(docs.map((d) => d.id)).toEqual(['train.txt:1', 'train.txt:1051', 'train.txt:2100']);
    expect(docs[0]!.first).toBe('First.');
    expect(docs.every((d) => d.chars <= TEXT_DOCUMENT_CHARS + 1000)).toBe(true);
    expect(await collect(corpus, 'validation')).toEqual(['Held out.']);
    // an empty file, a folder and a link to nothing are refused when the dataset is opened, naming them
    writeFileSync(join(dir, 'validation.txt'), '');
    expect(() => text.open({ dataDir: dir })).toThrow(/validation\.txt is empty/);
    rmSync(join(dir, 'validation.txt'));
    mkdirSync(join(dir, 'validation.txt'));
    expect(() => text.open({ dataDir: dir })).toThrow(/validation\.txt is not a file/);
    rmSync(join(dir, 'validation.txt'), { recursive: true });
    symlinkSync(join(dir, 'gone.txt'), join(dir, 'validation.txt'));
    expect(() => text.open({ dataDir: dir })).toThrow(/validation\.txt is a link to .*gone\.txt, which does not exist/);
  });

  it('trains a BPE vocabulary on its training split and gives token streams through a cache', async () => {
    const dir = tmp();
    const para = (i: number) => `Paragraph ${i} says the fox jumps over the lazy dog ${i % 7} times.`;
    writeFileSync(join(dir, 'train.txt'), Array.from({ length: 300 }, (_, i) => para(i)).join('\n\n'));
    writeFileSync(join(dir, 'validation.txt'), Array.from({ length: 20 }, (_, i) => para(1000 + i)).join('\n\n'));
    const before = process.env.PRIMER_CACHE_DIR;
    process.env.PRIMER_CACHE_DIR = tmp();
    try {
      const data = await prepareData({ dataset: 'text', dataDir: dir, tokenizer: 'bpe', vocabSize: 300 });
      expect(data.cache).toBeDefined();
      expect(data.tokenizer.vocabSize).toBe(300);
      // streamed through a token cache, not held in memory
      const validation = data.validation as TokenSource;
      expect(data.tokenizer.decode(Array.from(validation.read(0, 40)).filter((t) => t !== data.tokenizer.endOfDocument))).toContain('Paragraph 1000 says');
      expect(data.train.length).toBeGreaterThan(data.validation.length * 5);
    } finally {
      if (before === undefined) delete process.env.PRIMER_CACHE_DIR;
      else process.env.PRIMER_CACHE_DIR = before;
    }
  });
});
