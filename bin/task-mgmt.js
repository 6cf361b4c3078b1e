#!/usr/bin/env node
// Thin launcher: the compiled entry point does all the work. Without it (a clone installed with
// `npm ci --omit=dev`, which has no TypeScript to build it) one line says what to do.
import { existsSync } from 'node:fs';

const main = new URL('../dist/src/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('task-mgmt: dist/ is not built: run `npm ci` (or `npm run build`) in the clone first');
  process.exit(1);
}
await import(main.href);
