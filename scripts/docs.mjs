// npm run docs: writes docs/reference.md, schema/playbook.schema.json and schema/train.schema.json from the code (after tsc).
// test/reference/reference.test.ts fails when the checked-in files differ from what this writes.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { protocolsMarkdown, referenceMarkdown } from '../dist/reference/reference.js';
import { playbookJsonSchema, trainJsonSchema } from '../dist/reference/json-schema.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, 'docs'), { recursive: true });
mkdirSync(join(root, 'schema'), { recursive: true });
writeFileSync(join(root, 'docs/reference.md'), referenceMarkdown() + '\n');
writeFileSync(join(root, 'docs/protocols.md'), protocolsMarkdown() + '\n');
writeFileSync(join(root, 'schema/playbook.schema.json'), JSON.stringify(playbookJsonSchema(), null, 2) + '\n');
writeFileSync(join(root, 'schema/train.schema.json'), JSON.stringify(trainJsonSchema(), null, 2) + '\n');
console.log('wrote docs/reference.md, schema/playbook.schema.json and schema/train.schema.json');
