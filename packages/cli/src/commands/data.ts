import { existsSync } from 'node:fs';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { corpora, createTokenizer, prepareTokenCache, tokenizers, type Split } from '@primer-search/datasets';
import { checkName, checkPath } from '../flags.js';
import { quote } from '@primer-search/core';
import { UsageError, type CliIo } from '../io.js';
import { integer } from './dna.js';
import { fmt } from '../format.js';

interface PrepareOptions {
  dataset: string;
  dataDir?: string;
  tokenizer: string;
  tokenizerModel?: string;
  vocabSize?: number;
  out: string;
  splits: string;
  skipBadLines?: boolean;
  shardTokens: number;
  force?: boolean;
}

export function dataCommand(program: Command, io: CliIo): void {
  const data = program.command('data').description('Datasets: tokenize once into a cache that training reads from.');
  data
    .command('prepare')
    .description(
      'Tokenize a dataset once into compact binary shards (uint16 or uint32 ids) with a manifest (dataset, files, tokenizer, token counts). ' +
        'primer train and primer search read batches from it with --cache DIR; a cache built with another tokenizer or from changed files is refused.',
    )
    .requiredOption('--dataset <name>', `the dataset (${corpora.names().join(', ')})`)
    .option('--data-dir <dir>', 'where the dataset files are (lm1b: the release, unpacked or .tar.gz; c4: the json.gz shards; text: train.txt and validation.txt, UTF-8, documents separated by blank lines)')
    .option('--tokenizer <name>', `tokenizer (${tokenizers.names().join(', ')})`, 'byte')
    .option('--tokenizer-model <file>', 'the model file of --tokenizer sentencepiece')
    .option('--vocab-size <n>', 'vocabulary size of a trained tokenizer (bpe)', integer('--vocab-size', 258))
    .requiredOption('--out <dir>', 'the cache directory to write')
    .option('--splits <list>', 'splits to tokenize', 'train,validation')
    .option('--skip-bad-lines', 'count and skip unreadable lines instead of stopping at the first')
    .option('--shard-tokens <n>', 'tokens per shard file', integer('--shard-tokens', 1024), 64 * 2 ** 20)
    .option('--force', 'replace an existing cache in --out')
    .addHelpText('after', '\nExample:\n  primer data prepare --dataset lm1b --data-dir ~/data/lm1b --tokenizer gpt2 --out ~/data/lm1b-gpt2\n  primer train --dataset lm1b --data-dir ~/data/lm1b --tokenizer gpt2 --cache ~/data/lm1b-gpt2 --model primer\n')
    .action(async (o: PrepareOptions) => {
      checkName('--dataset', o.dataset, 'dataset', corpora.names());
      checkName('--tokenizer', o.tokenizer, 'tokenizer', tokenizers.names());
      checkPath('--data-dir', o.dataDir, 'folder');
      if (o.dataDir === undefined && corpora.get(o.dataset as never).needsDataDir) throw new UsageError(`--dataset ${o.dataset} reads files you keep: give --data-dir DIR`);
      checkPath('--tokenizer-model', o.tokenizerModel, 'file');
      if (existsSync(join(o.out, 'manifest.json')) && !o.force) throw new UsageError(`${o.out} already holds a token cache; add --force to build it again`);
      const splits = o.splits.split(',').map((s) => s.trim()) as Split[];
      for (const s of splits) if (!['train', 'validation', 'test'].includes(s)) throw new UsageError(`--splits: unknown split ${quote(s)} (train, validation, test)`);
      const corpus = corpora.get(o.dataset).open({ dataDir: o.dataDir, skipBadLines: o.skipBadLines });
      const tokenizer = await createTokenizer(corpus, o);
      io.stderr(`tokenizing ${o.dataset} (${splits.join(', ')}) with ${tokenizer.name} (vocabulary ${fmt(tokenizer.vocabSize)}) into ${o.out}\n`);
      const bar = io.interactive
        ? new cliProgress.SingleBar({ format: '{split} {documents} documents | {tokens} tokens | {rate} tokens/s', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic)
        : undefined;
      bar?.start(1, 0, { split: '', documents: 0, tokens: 0, rate: 0 });
      let lastLine = 0;
      try {
        const m = await prepareTokenCache({
          corpus,
          dataset: o.dataset,
          dataDir: o.dataDir,
          tokenizer,
          out: o.out,
          splits,
          shardTokens: o.shardTokens,
          onProgress: (p) => {
            const fields = { split: p.split, documents: fmt(p.documents), tokens: fmt(p.tokens), rate: fmt(p.tokens / Math.max(p.seconds, 1e-3)) };
            if (bar) bar.update(0, fields);
            else if (performance.now() - lastLine > 5000) {
              lastLine = performance.now();
              io.stderr(`  ${fields.split}: ${fields.documents} documents, ${fields.tokens} tokens (${fields.rate} tokens/s)\n`);
            }
          },
        });
        bar?.stop();
        for (const [split, s] of Object.entries(m.splits)) {
          io.stdout(`${split}: ${fmt(s.documents)} documents, ${fmt(s.tokens)} tokens in ${s.shards.length} shard${s.shards.length === 1 ? '' : 's'}\n`);
        }
        const total = Object.values(m.splits).reduce((a, s) => a + s.tokens, 0);
        io.stdout(`${o.out}: ${m.dtype} ids, ${m.seconds.toFixed(1)}s (${fmt(total / Math.max(m.seconds, 1e-3))} tokens/s)${m.skippedLines ? `, ${fmt(m.skippedLines)} bad lines skipped` : ''}\n`);
      } finally {
        bar?.stop();
      }
    });
}
