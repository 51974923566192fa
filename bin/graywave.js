#!/usr/bin/env node
// First: the colour settings, before chalk and listr2 read them.
import '../dist/cli/color-env.js';

// `graywave run --json | head`: when the reader goes away, keep releasing (the journal is the record) and stop printing.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

// `graywave sandbox …`, which playbook steps run once per host, loads only the sandbox commands
// (dist/cli/demo-steps.js); it leaves help, --set and the like to the whole CLI.
const fast = process.argv[2] === 'sandbox' ? await (await import('../dist/cli/demo-steps.js')).sandboxMain(process.argv) : undefined;
const code = fast ?? (await (await import('../dist/cli/main.js')).main(process.argv));
process.exitCode = code;
// Out 50 ms after the work is done, whatever still holds the event loop. A ref'd timer: an unref'd one does not fire
// while only fetch's idle keep-alive socket holds the loop (Node 20), and each command then lingered until the
// socket's idle timeout, about 1 s (more on a busy machine) of every playbook step that runs `graywave sandbox …`.
setTimeout(() => process.exit(code), 50);
