// A miniature LM1B release in the official layout, for tests.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const LM1B_FIXTURE: Record<string, string> = {
  'training-monolingual.tokenized.shuffled/news.en-00001-of-00100': 'The cat sat on the mat .\nIt was a sunny day .\n',
  'training-monolingual.tokenized.shuffled/news.en-00002-of-00100': 'Prices rose 3 % in May , officials said .\nCafé owners in Zürich were pleased .\n',
  'heldout-monolingual.tokenized.shuffled/news.en.heldout-00000-of-00050': 'A held-out sentence .\n',
  'heldout-monolingual.tokenized.shuffled/news.en.heldout-00001-of-00050': 'A test sentence .\n',
};

export function writeTree(root: string, files: Record<string, string> = LM1B_FIXTURE): string {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(root, name, '..'), { recursive: true });
    writeFileSync(join(root, name), text);
  }
  return root;
}
