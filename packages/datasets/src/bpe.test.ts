import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tokenStream } from './batches.js';
import { END_OF_DOCUMENT, STALE_SCRATCH_MS, sweepStale, trainBpe } from './bpe.js';
import { brown } from './brown.js';
import { byteTokenizer, tokenizers } from './tokenizer.js';
import { loadTokenizer, saveTokenizer } from './saved-tokenizer.js';

const cacheDir = mkdtempSync(join(tmpdir(), 'primer-bpe-'));
const corpus = brown.open();
const trainText = () => corpus.documents!().filter((d) => d.split === 'train').map((d) => d.text);

describe('the bpe tokenizer (Hugging Face tokenizers, trained on the corpus)', () => {
  const bpe = trainBpe({ vocabSize: 512, text: trainText, cacheDir });

  it('has exactly the vocabulary size asked for, the last id ending documents', () => {
    expect(bpe.vocabSize).toBe(512);
    expect(bpe.endOfDocument).toBe(511);
    const ids = tokenStream(corpus, 'validation', bpe);
    expect(ids.reduce((m, i) => Math.max(m, i), 0)).toBe(511);
    expect(ids.every((i) => i >= 0 && i < 512)).toBe(true);
  });

  it('round-trips text exactly, non-ASCII included', () => {
    const doc = corpus.documents!().find((d) => d.split === 'validation')!.text;
    for (const text of [doc, 'café ☕ — naïve 日本語 🙂\n\n\ttabs  and  spaces', END_OF_DOCUMENT.slice(1), '']) {
      expect(bpe.decode(bpe.encode(text))).toBe(text);
    }
  });

  it('compresses English text well below one token per byte', () => {
    const text = corpus.documents!().filter((d) => d.split === 'validation').map((d) => d.text).join('\n');
    const bytes = byteTokenizer().encode(text).length;
    expect(bpe.encode(text).length / bytes).toBeLessThan(0.55);
  });

  it('caches the trained vocabulary by content and size', () => {
    const files = readdirSync(cacheDir).filter((f) => f.endsWith('.json'));
    expect(files).toHaveLength(1);
    const again = trainBpe({ vocabSize: 512, text: trainText, cacheDir });
    expect(again.fingerprint).toBe(bpe.fingerprint);
    expect(readdirSync(cacheDir).filter((f) => f.endsWith('.json'))).toHaveLength(1);
    expect(trainBpe({ vocabSize: 400, text: trainText, cacheDir }).fingerprint).not.toBe(bpe.fingerprint);
  });

  it('refuses impossible sizes and missing training text', () => {
    expect(() => trainBpe({ vocabSize: 100, text: trainText, cacheDir })).toThrow(/258 to 30000/);
    expect(() => tokenizers.get('bpe').create({})).toThrow(/give it trainingText/);
  });

  it('saves next to an exported model and loads back as the same vocabulary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-saved-bpe-'));
    const saved = saveTokenizer(bpe, dir);
    expect(saved).toMatchObject({ name: 'bpe', vocabSize: 512, fingerprint: bpe.fingerprint, vocabularyFile: 'bpe-tokenizer.json' });
    const loaded = await loadTokenizer(dir);
    const text = 'The jury said it did find that many of the voters — naïve or not — were confused.';
    expect(Array.from(loaded.encode(text))).toEqual(Array.from(bpe.encode(text)));
    expect(loaded.decode(loaded.encode(text))).toBe(text);
    expect(loaded.endOfDocument).toBe(bpe.endOfDocument);
    // a byte tokenizer needs no vocabulary file
    const bytes = mkdtempSync(join(tmpdir(), 'primer-saved-byte-'));
    expect(saveTokenizer(byteTokenizer(), bytes).vocabularyFile).toBeUndefined();
    expect((await loadTokenizer(bytes)).fingerprint).toBe('byte-utf8-257');
    // a file that does not describe what it loads is refused, naming it
    writeFileSync(join(dir, 'bpe-tokenizer.json'), `${readFileSync(join(dir, 'bpe-tokenizer.json'), 'utf8')} `);
    await expect(loadTokenizer(dir)).rejects.toThrow(/tokenizer\.json names the vocabulary file bpe-tokenizer\.json, whose contents have changed/);
    writeFileSync(join(bytes, 'tokenizer.json'), JSON.stringify({ ...saveTokenizer(byteTokenizer(), bytes), fingerprint: 'other' }));
    await expect(loadTokenizer(bytes)).rejects.toThrow(/tokenizer\.json describes the byte vocabulary other/);
    await expect(loadTokenizer(join(dir, 'nope'))).rejects.toThrow(/not a model exported by primer-search/);
  });

  it('is trained by several processes into one cache at once, each getting the whole vocabulary', async () => {
    // Two studies started together each train the vocabulary their data needs: their trainers'
    // files must not collide, and each ends with the one cached vocabulary.
    const shared = mkdtempSync(join(tmpdir(), 'primer-bpe-shared-'));
    const work = mkdtempSync(join(tmpdir(), 'primer-bpe-procs-'));
    const textFile = join(work, 'text.json');
    writeFileSync(textFile, JSON.stringify(trainText().slice(0, 150)));
    const child = join(work, 'child.ts');
    const bpeModule = fileURLToPath(new URL('./bpe.ts', import.meta.url));
    writeFileSync(
      child,
      `import { readFileSync } from 'node:fs';\n` +
        `import { trainBpe } from ${JSON.stringify(bpeModule)};\n` +
        `const texts = JSON.parse(readFileSync(${JSON.stringify(textFile)}, 'utf8'));\n` +
        `const bpe = trainBpe({ vocabSize: 400, text: () => texts, cacheDir: ${JSON.stringify(shared)} });\n` +
        `process.stdout.write(bpe.fingerprint + ' ' + bpe.vocabSize + ' ' + bpe.encode('The jury said').join(','));\n`,
    );
    const run = () =>
      new Promise<{ code: number | null; out: string; err: string }>((done) => {
        const p = spawn(process.execPath, ['--conditions=@primer-search/source', '--import', 'tsx', child], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (err += d));
        p.on('close', (code) => done({ code, out, err }));
      });
    const results = await Promise.all([run(), run(), run()]);
    for (const r of results) expect(r, r.err).toMatchObject({ code: 0 });
    // each got the whole vocabulary: 400 ids, encoding as one trained here does
    const texts = trainText().slice(0, 150);
    const here = trainBpe({ vocabSize: 400, text: () => texts, cacheDir: mkdtempSync(join(tmpdir(), 'primer-bpe-here-')) });
    for (const r of results) expect(r.out).toBe(`${here.fingerprint} 400 ${here.encode('The jury said').join(',')}`);
    expect(here.fingerprint).toMatch(/^bpe-v1-400-[0-9a-f]{16}$/);
    // nothing but the vocabulary is left in the cache
    const key = here.fingerprint;
    expect(readdirSync(shared)).toEqual([`${key}.json`]);
    // Where two trainers' ends overlap, the other's working files lie beside the cache's file
    // under the names a shared scheme would use: here they are in the way (as folders), and
    // training is not disturbed by them.
    const crowded = mkdtempSync(join(tmpdir(), 'primer-bpe-crowded-'));
    const others = ['trained', 'tmp', 'json'].map((ext) => `${key}.json.${ext}`);
    for (const name of others) mkdirSync(join(crowded, name));
    expect(trainBpe({ vocabSize: 400, text: () => texts, cacheDir: crowded }).fingerprint).toBe(key);
    expect(readdirSync(crowded).sort()).toEqual([`${key}.json`, ...others].sort());
  }, 120_000);

  it('a killed trainer\'s scratch files are swept once a day old, by name and age only', () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-bpe-sweep-'));
    const key = 'bpe-v1-400-0123456789abcdef';
    const names = {
      oldText: `${key}-1234-0a1b2c3d.txt`,
      newText: `${key}-1235-0a1b2c3d.txt`,
      oldTrained: `${key}.json.77-deadbeef.trained`,
      oldOtherKey: `bpe-v1-400-ffffffffffffffff-1234-0a1b2c3d.txt`,
      oldUnrelated: `${key}-notes.txt`,
      oldFolder: `${key}-99-00000000.txt`,
    };
    for (const [what, name] of Object.entries(names)) {
      if (what === 'oldFolder') mkdirSync(join(dir, name));
      else writeFileSync(join(dir, name), 'x');
      if (what.startsWith('old')) {
        const t = new Date(Date.now() - STALE_SCRATCH_MS - 60_000);
        utimesSync(join(dir, name), t, t);
      }
    }
    expect(sweepStale(join(dir, `${key}-`), /^\d+-[0-9a-f]{8}\.txt$/)).toEqual([join(dir, names.oldText)]);
    expect(sweepStale(join(dir, `${key}.json.`), /^\d+-[0-9a-f]{8}\.(trained|json)$/)).toEqual([join(dir, names.oldTrained)]);
    expect(readdirSync(dir).sort()).toEqual([names.newText, names.oldOtherKey, names.oldUnrelated, names.oldFolder].sort());
    expect(sweepStale(join(dir, 'no-such-folder', 'x-'), /./)).toEqual([]);
    // folders too when asked (an export's staging folders), with an age of one's own
    expect(sweepStale(join(dir, `${key}-`), /^\d+-[0-9a-f]{8}\.txt$/, { folders: true, olderThanMs: 3600_000 })).toEqual([join(dir, names.oldFolder)]);
    expect(readdirSync(dir).sort()).toEqual([names.newText, names.oldOtherKey, names.oldUnrelated].sort());
  });
});
