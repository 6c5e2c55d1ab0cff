// Writes the generated docs: `npm run docs`.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EXCERPT_FILES, baselineExamples, dnaSchemaText, primitivesMarkdown, withExcerpts } from './docs.js';

const at = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));
writeFileSync(at('docs/primitives.md'), primitivesMarkdown());
writeFileSync(at('docs/dna.schema.json'), dnaSchemaText());
for (const [file, text] of baselineExamples()) writeFileSync(at(`examples/dna/${file}`), text);
for (const f of EXCERPT_FILES) writeFileSync(at(f), await withExcerpts(readFileSync(at(f), 'utf8')));
console.log(`wrote docs/primitives.md, docs/dna.schema.json, examples/dna/*.json and the tool's output excerpts in ${EXCERPT_FILES.join(', ')}`);
