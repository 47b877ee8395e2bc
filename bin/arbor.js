#!/usr/bin/env node
// Starts the CLI from a compiled copy of its TypeScript, made on the first start after any
// source changes and kept in node_modules/.cache/arbor: commands start without tsx's loader
// (0.2 s each), and nobody runs a build step. ARBOR_FROM_SOURCE=1, or a copy that cannot be
// made (a read-only checkout, a source that does not compile), runs the sources through tsx.
import { pathToFileURL } from 'node:url';
import { compiledCliEntry } from './compiled-cli.js';

const entry =
  process.env.ARBOR_FROM_SOURCE === '1' ? undefined : await compiledCliEntry().catch(() => undefined);
if (entry) {
  process.setSourceMapsEnabled(true);
  // eslint-disable-next-line no-restricted-syntax -- the compiled copy's path is known only at run time
  await import(pathToFileURL(entry).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/main.ts');
}
