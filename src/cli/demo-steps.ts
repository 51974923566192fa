import { Command } from 'commander';
import { renderFailure } from './failure.js';
import { sandboxCommand } from './sandbox.js';

/**
 * The small entry of `graywave sandbox …`, which bin/graywave.js takes before loading the whole CLI. The demo
 * playbooks' steps run `graywave sandbox deploy|undeploy|switch|probe` once per host (or per wave): with the whole
 * CLI (engine, renderers, playbook loader, every provider) each of those paid a start of about 0.5 s of CPU before
 * doing anything, seconds on a busy machine, on the release's critical path. This entry loads commander and the
 * sandbox supervisor only; the command, its options, its output and its errors (./failure.ts) are the same
 * sandboxCommand() the whole CLI registers.
 *
 * It steps aside (returns undefined: bin/graywave.js then runs the whole CLI) for anything that is the whole CLI's
 * business: help (which lists the program's options), colour flags, --set, --verbose, and a subcommand it does not
 * know (the whole CLI's error names the commands there are).
 */
const WHOLE_CLI = /^(-h|--help|--set|--verbose|--color|--no-color)(=|$)/;

export async function sandboxMain(argv: string[]): Promise<number | undefined> {
  const args = argv.slice(2);
  const sandbox = sandboxCommand();
  if (args[0] !== 'sandbox' || !sandbox.commands.some((c) => c.name() === args[1]) || args.some((a) => WHOLE_CLI.test(a))) return undefined;
  // The program's settings that matter below `graywave sandbox` (src/cli/main.ts buildProgram).
  const program = new Command('graywave').enablePositionalOptions().showHelpAfterError().exitOverride().addCommand(sandbox);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    return renderFailure(err, false);
  }
}
