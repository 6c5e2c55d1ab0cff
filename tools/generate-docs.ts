// Writes the generated docs: `npm run docs`.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { baselineExamples, dnaSchemaText, primitivesMarkdown } from './docs.js';

const at = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));
writeFileSync(at('docs/primitives.md'), primitivesMarkdown());
writeFileSync(at('docs/dna.schema.json'), dnaSchemaText());
for (const [file, text] of baselineExamples()) writeFileSync(at(`examples/dna/${file}`), text);
console.log('wrote docs/primitives.md, docs/dna.schema.json and examples/dna/*.json');
