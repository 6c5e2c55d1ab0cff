// Test helper, run as its own process: builds (or waits for) the byte-level token cache of
// the LM1B folder argv[2] at argv[3], printing what it did as one JSON line (and "waiting" on
// stderr the moment it meets another process's lock).
import { byteTokenizer, ensureTokenCache, lm1b } from '../index.js';

const [dataDir, out] = process.argv.slice(2) as [string, string];
let built = false;
let waited = false;
const manifest = await ensureTokenCache({
  corpus: lm1b.open({ dataDir }),
  dataset: 'lm1b',
  dataDir,
  tokenizer: byteTokenizer(),
  out,
  onProgress: () => (built = true),
  onWait: () => {
    waited = true;
    process.stderr.write('waiting\n');
  },
});
process.stdout.write(`${JSON.stringify({ built, waited, tokens: manifest.splits.train!.tokens })}\n`);
