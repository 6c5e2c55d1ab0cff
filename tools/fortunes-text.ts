// `npx vite-node tools/fortunes-text.ts OUT [FORTUNES_DIR]`: experiment 3's second corpus, as a
// `--dataset text` folder. Debian's fortunes (`apt-get install fortunes fortunes-min`: quotations,
// jokes, poems, definitions; /usr/share/games/fortunes) hold entries separated by lines of `%`.
// Each entry becomes one document (its blank lines dropped, so it stays one document); entries
// are taken file by file in name order, and every 20th (the 1st, the 21st, ...) goes to
// validation.txt, the rest to train.txt. Deterministic: the same package gives the same files.
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [out, source = '/usr/share/games/fortunes'] = process.argv.slice(2);
if (!out) {
  console.error('usage: vite-node tools/fortunes-text.ts OUT [FORTUNES_DIR] (default /usr/share/games/fortunes; apt-get install fortunes fortunes-min)');
  process.exit(2);
}
let files: string[];
try {
  // the text files: not the strfile indexes (.dat) nor the links to UTF-8 copies (.u8)
  files = readdirSync(source)
    .filter((f) => !f.endsWith('.dat') && !f.endsWith('.u8') && statSync(join(source, f)).isFile())
    .sort();
} catch (e) {
  console.error(`cannot read ${source}: ${(e as Error).message} (apt-get install fortunes fortunes-min)`);
  process.exit(1);
}
const entries: string[] = [];
for (const f of files) {
  const text = readFileSync(join(source, f), 'utf8').replace(/\r\n/g, '\n');
  for (const entry of text.split(/^%$/m)) {
    const lines = entry
      .split('\n')
      .map((l) => l.trimEnd())
      .filter((l) => l.trim() !== '');
    if (lines.length) entries.push(lines.join('\n'));
  }
}
if (entries.length === 0) {
  console.error(`no fortunes in ${source}`);
  process.exit(1);
}
const validation = entries.filter((_, i) => i % 20 === 0);
const train = entries.filter((_, i) => i % 20 !== 0);
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'train.txt'), `${train.join('\n\n')}\n`);
writeFileSync(join(out, 'validation.txt'), `${validation.join('\n\n')}\n`);
const chars = (xs: string[]) => xs.reduce((a, x) => a + x.length, 0).toLocaleString('en-US');
console.log(`${files.length} files, ${entries.length.toLocaleString('en-US')} fortunes: ${train.length.toLocaleString('en-US')} (${chars(train)} characters) in ${join(out, 'train.txt')}, ${validation.length.toLocaleString('en-US')} (${chars(validation)}) in ${join(out, 'validation.txt')}`);
