// Trains a byte-level BPE vocabulary with Hugging Face `tokenizers` and writes a
// tokenizer.json cut to the requested size. Run in a child process by src/bpe.ts: the
// native trainer prints progress to stdout, which must not reach our own output.
// Input (argv[2], JSON): { textFile, vocabSize, out, endOfDocument, scratch }. Its files are
// written under `scratch` (a path prefix of the caller's own, so processes training the same
// vocabulary at once never touch each other's) and the result renamed onto `out` at the end.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { BPE, Tokenizer, byteLevelPreTokenizer } from 'tokenizers';

const { textFile, vocabSize, out, endOfDocument, scratch } = JSON.parse(process.argv[2]);

const trainer = new Tokenizer(BPE.empty());
trainer.setPreTokenizer(byteLevelPreTokenizer(false, true));
trainer.train([textFile]);
trainer.save(`${scratch}.trained`);
const trained = JSON.parse(readFileSync(`${scratch}.trained`, 'utf8'));

// GPT-2's byte -> printable character map (the alphabet of byte-level BPE).
function bytesToUnicode() {
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const map = new Array(256);
  bs.forEach((b, i) => (map[b] = String.fromCodePoint(cs[i])));
  return map;
}

const vocab = {};
let next = 0;
for (const ch of bytesToUnicode()) vocab[ch] = next++;
const merges = [];
for (const m of trained.model.merges) {
  if (next >= vocabSize - 1) break;
  const [a, b] = Array.isArray(m) ? m : m.split(' ');
  const merged = a + b;
  if (vocab[a] === undefined || vocab[b] === undefined || vocab[merged] !== undefined) continue;
  vocab[merged] = next++;
  merges.push([a, b]);
}
const eodId = next;
const json = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: [{ id: eodId, content: endOfDocument, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
  normalizer: null,
  pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
  post_processor: null,
  decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
  model: {
    type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
    fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
  },
};
writeFileSync(`${scratch}.json`, JSON.stringify(json));
renameSync(`${scratch}.json`, out);
