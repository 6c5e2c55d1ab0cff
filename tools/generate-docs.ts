// Writes the generated docs: `npm run docs`.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dnaSchemaText, primitivesMarkdown } from './docs.js';

const at = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));
writeFileSync(at('docs/primitives.md'), primitivesMarkdown());
writeFileSync(at('docs/dna.schema.json'), dnaSchemaText());
console.log('wrote docs/primitives.md and docs/dna.schema.json');
