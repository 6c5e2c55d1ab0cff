import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { primitives } from '@primer-search/primitives';
import { describe, expect, it } from 'vitest';
import { baselineExamples, dnaSchemaText, primitivesMarkdown } from './docs.js';

const read = (p: string) => readFileSync(fileURLToPath(new URL(`../${p}`, import.meta.url)), 'utf8');

describe('generated docs (run `npm run docs` when these fail)', () => {
  it('docs/primitives.md has a doc line for every registered primitive (meta-test)', () => {
    const text = read('docs/primitives.md');
    for (const { name, entry } of primitives.list()) {
      const line = text.split('\n').find((l) => l.startsWith(`| \`${name}\` |`));
      expect(line, `no doc line for ${name}`).toBeDefined();
      expect(line).toContain(entry.doc.replaceAll('|', '\\|'));
    }
    expect(text).toBe(primitivesMarkdown());
  });

  it('docs/dna.schema.json is the schema the validator uses', () => {
    expect(read('docs/dna.schema.json')).toBe(dnaSchemaText());
  });

  it('examples/dna/*.json are the registered baselines', () => {
    for (const [file, text] of baselineExamples()) expect(read(`examples/dna/${file}`), file).toBe(text);
  });
});
