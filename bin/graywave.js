#!/usr/bin/env node
// First: the colour settings, before chalk and listr2 read them.
import '../dist/cli/color-env.js';
import { main } from '../dist/cli/main.js';

// `graywave run --json | head`: when the reader goes away, keep releasing (the journal is the record) and stop printing.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

main(process.argv).then((code) => {
  process.exitCode = code;
  setTimeout(() => process.exit(code), 50).unref();
});
