import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeTree } from './__fixtures__/lm1b.js';
import { BatchSampler, byteTokenizer, ensureTokenCache, prepareData, evaluationBatches, withCacheLock, gpt2Tokenizer, lm1b, memorySource, openTokenCache, prepareTokenCache, readCacheManifest, type Tokenizer } from './index.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'primer-cache-'));
const manifest0 = (dir: string) => readCacheManifest(dir).splits.train!.shards[0]!.file;
const SENTENCES = ['The cat sat on the mat .', 'It was a sunny day .', 'Prices rose 3 % in May , officials said .', 'Café owners in Zürich were pleased .'];

/** The reference: every sentence encoded, each followed by the end-of-document id. */
function expected(t: Tokenizer, texts: string[]): Uint32Array {
  return Uint32Array.from(texts.flatMap((x) => [...t.encode(x), t.endOfDocument]));
}

async function build(shardTokens = 40, tokenizer: Tokenizer = byteTokenizer()) {
  const data = writeTree(tmp());
  const out = join(tmp(), 'cache');
  const corpus = lm1b.open({ dataDir: data });
  const manifest = await prepareTokenCache({ corpus, dataset: 'lm1b', dataDir: data, tokenizer, out, shardTokens });
  return { data, out, corpus, manifest, tokenizer };
}

describe('token cache', () => {
  it('holds exactly the tokenized documents, across shard boundaries, with a manifest', async () => {
    const { out, manifest, tokenizer, corpus } = await build();
    const want = expected(tokenizer, SENTENCES);
    expect(manifest.dtype).toBe('uint16');
    expect(manifest.splits.train!.tokens).toBe(want.length);
    expect(manifest.splits.train!.documents).toBe(4);
    expect(manifest.splits.train!.shards.length).toBeGreaterThan(2);
    expect(manifest.files.map((f) => f.path)).toEqual(corpus.files!().map((f) => f.path));
    expect(readCacheManifest(out).tokenizer.fingerprint).toBe(tokenizer.fingerprint);
    const train = openTokenCache(out).source('train');
    expect(train.length).toBe(want.length);
    expect([...train.read(0, want.length)]).toEqual([...want]);
    for (const [start, count] of [[0, 1], [35, 10], [38, 50], [want.length - 5, 5]] as const) {
      expect([...train.read(start, count)], `read(${start}, ${count})`).toEqual([...want.subarray(start, start + count)]);
    }
    expect(() => train.read(want.length - 2, 5)).toThrow(RangeError);
    expect([...train.documentStarts()]).toEqual([...memorySource(want, tokenizer.endOfDocument).documentStarts()]);
    expect([...openTokenCache(out).source('validation').read(0, 5)]).toEqual([...tokenizer.encode('A hel')]);
  });

  it('gives the same batches as the same tokens in memory, in both batching modes', async () => {
    const { out, tokenizer } = await build();
    const want = expected(tokenizer, SENTENCES);
    const fromCache = openTokenCache(out).source('train');
    for (const mode of ['packed', 'sentence'] as const) {
      const a = new BatchSampler(fromCache, 3, 8, 42, mode);
      const b = new BatchSampler(memorySource(want, tokenizer.endOfDocument), 3, 8, 42, mode);
      for (let i = 0; i < 5; i++) expect(a.next()).toEqual(b.next());
    }
    const starts = new Set(fromCache.documentStarts());
    const s = new BatchSampler(fromCache, 4, 8, 1, 'sentence');
    for (let i = 0; i < 10; i++) {
      const batch = s.next();
      for (let r = 0; r < 4; r++) {
        const first = batch.tokens.slice(r * 8, r * 8 + 3);
        // every window starts where a sentence does
        expect([...want.keys()].some((k) => starts.has(k) && want[k] === first[0] && want[k + 1] === first[1] && want[k + 2] === first[2])).toBe(true);
      }
    }
    expect(evaluationBatches(openTokenCache(out).source('validation'), 1, 8, 4)).toHaveLength(2);
  });

  it('uses uint32 ids when the vocabulary does not fit in 16 bits', async () => {
    const big: Tokenizer = { ...byteTokenizer(), name: 'big', vocabSize: 70_000, endOfDocument: 69_999, fingerprint: 'big-70000' };
    const { out, manifest } = await build(1000, big);
    expect(manifest.dtype).toBe('uint32');
    const train = openTokenCache(out).source('train');
    expect(train.read(train.length - 1, 1)[0]).toBe(69_999);
  });

  it('refuses a cache built with another tokenizer, from changed files, or left incomplete', async () => {
    const { out, data, corpus, tokenizer } = await build();
    expect(() => openTokenCache(out, { dataset: 'lm1b', tokenizer, files: corpus.files!() })).not.toThrow();
    expect(() => openTokenCache(out, { tokenizer: gpt2Tokenizer() })).toThrow(/built with the byte tokenizer \(byte-utf8-257\), not gpt2 \(gpt2-tiktoken-50257\)/);
    expect(() => openTokenCache(out, { dataset: 'c4' })).toThrow(/holds lm1b, not c4/);
    const shard = join(data, 'training-monolingual.tokenized.shuffled/news.en-00002-of-00100');
    writeFileSync(shard, 'Changed text .\n');
    utimesSync(shard, new Date(), new Date(Date.now() + 5000));
    expect(() => openTokenCache(out, { files: lm1b.open({ dataDir: data }).files!() })).toThrow(/out of date: .*news\.en-00002-of-00100 changed since it was built/);
    expect(() => openTokenCache(tmp())).toThrow(/not a complete token cache \(no manifest\.json\): build it with primer data prepare/);
    const torn = tmp();
    writeFileSync(join(torn, 'manifest.json'), '{"format": "primer-token-ca');
    expect(() => openTokenCache(torn)).toThrow(/manifest\.json is not valid JSON/);
    rmSync(join(out, manifest0(out)));
    expect(() => openTokenCache(out).source('train')).toThrow(/token cache shard .*train-00000\.bin is missing/);
  });
});

describe('a cache path that names something else', () => {
  it('is refused, never replaced: a folder of other files, a file (a study\'s settings cannot aim the builder at them)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-cache-victim-'));
    const keep = join(dir, 'keep');
    mkdirSync(keep);
    writeFileSync(join(keep, 'notes.txt'), 'mine');
    const file = join(dir, 'a-file');
    writeFileSync(file, 'also mine');
    for (const [out, why] of [[keep, /holds files but no token cache \(no manifest\.json\): refusing to replace it/], [file, /is a file, not a token cache: refusing to replace it/]] as const) {
      await expect(prepareData({ dataset: 'brown', tokenizer: 'byte', cache: out } as never)).rejects.toThrow(why);
    }
    expect(readFileSync(join(keep, 'notes.txt'), 'utf8')).toBe('mine');
    expect(readFileSync(file, 'utf8')).toBe('also mine');
    expect(readdirSync(dir).sort()).toEqual(['a-file', 'keep']);
  });
});

describe('building a token cache from two processes at once', () => {
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const script = fileURLToPath(new URL('./__fixtures__/ensure-cache.ts', import.meta.url));
  /** The process's result, and a promise kept when it says it is waiting for the lock. */
  const start = (data: string, out: string) => {
    let waiting!: () => void;
    const met = new Promise<void>((r) => (waiting = r));
    const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const p = spawn(process.execPath, ['--conditions=@primer-search/source', '--import', 'tsx', script, data, out], { cwd: root });
      let o = '';
      let e = '';
      p.stdout.on('data', (d: Buffer) => (o += d.toString()));
      p.stderr.on('data', (d: Buffer) => {
        e += d.toString();
        if (e.includes('waiting\n')) waiting();
      });
      p.on('exit', (code) => {
        waiting();
        resolve({ code, out: o, err: e });
      });
    });
    return { met, done };
  };
  const run = (data: string, out: string) => start(data, out).done;

  it('one builds it and the other waits and reads it; no half-built folder or lock is left', async () => {
    // enough text that the build takes a while (a few MB)
    const line = 'The quick brown fox jumps over the lazy dog , said the officials on Tuesday .\n';
    const data = writeTree(tmp(), {
      'training-monolingual.tokenized.shuffled/news.en-00001-of-00100': line.repeat(60_000),
      'heldout-monolingual.tokenized.shuffled/news.en.heldout-00000-of-00050': line.repeat(100),
    });
    const parent = tmp();
    const out = join(parent, 'cache');
    // hold the lock until both have met it (however long starting them takes on a busy
    // machine); then one builds while the other waits
    let both!: Promise<Array<Awaited<ReturnType<typeof run>>>>;
    await withCacheLock(out, async () => {
      const procs = [start(data, out), start(data, out)];
      both = Promise.all(procs.map((p) => p.done));
      await Promise.all(procs.map((p) => p.met));
    });
    const [a, b] = await both;
    expect(a.code, a.err).toBe(0);
    expect(b.code, b.err).toBe(0);
    const [ra, rb] = [JSON.parse(a.out), JSON.parse(b.out)];
    expect([ra.built, rb.built].sort()).toEqual([false, true]);
    expect([ra.waited, rb.waited]).toEqual([true, true]);
    expect(ra.tokens).toBe(rb.tokens);
    expect(ra.tokens).toBe(line.length * 60_000);
    expect(readdirSync(parent).sort()).toEqual(['cache']);
    expect(readCacheManifest(out).splits.train!.tokens).toBe(ra.tokens);
  }, 120_000);

  it('takes over the lock of a process that died', async () => {
    const data = writeTree(tmp());
    const out = join(tmp(), 'cache');
    writeFileSync(`${out}.lock`, JSON.stringify({ pid: 2 ** 22 + 12345, host: (await import('node:os')).hostname() }));
    const m = await ensureTokenCache({ corpus: lm1b.open({ dataDir: data }), dataset: 'lm1b', dataDir: data, tokenizer: byteTokenizer(), out });
    expect(m.splits.train!.documents).toBe(4);
    expect(existsSync(`${out}.lock`)).toBe(false);
  });

  it('refuses, naming it, a file in the lock\'s place that is not a lock (rather than removing it or waiting forever)', async () => {
    const data = writeTree(tmp());
    const out = join(tmp(), 'cache');
    writeFileSync(`${out}.lock`, 'my notes');
    await expect(ensureTokenCache({ corpus: lm1b.open({ dataDir: data }), dataset: 'lm1b', dataDir: data, tokenizer: byteTokenizer(), out })).rejects.toThrow(
      `${out}.lock is in the way of the token cache's lock and is not a lock file ("my notes"): remove it`,
    );
    expect(readFileSync(`${out}.lock`, 'utf8')).toBe('my notes');
  });
});
