// Writes docs/controller-api.md (or the file given) from the controller's route schemas.
import { writeFileSync } from 'node:fs';
import { openApiDocument } from '../http/server.js';
import { renderApiMarkdown } from '../http/api-docs.js';

const out = process.argv[2] ?? 'docs/controller-api.md';
writeFileSync(out, renderApiMarkdown(await openApiDocument()));
process.stdout.write(`wrote ${out}\n`);
