import chalk from 'chalk';
import { CommanderError } from 'commander';
import { ConfigError, EXIT, GraywaveError } from '../errors.js';

/**
 * An error that reached the CLI edge: printed once, turned into the exit code. Shared by main() and the small
 * entry of the sandbox step commands (./demo-steps.ts), so both fail alike.
 */
export function renderFailure(err: unknown, verbose: boolean): number {
  if (err instanceof CommanderError) {
    // `graywave` alone prints the help as an error (exit code 1 from commander): a usage error here, exit 2.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help')
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    return EXIT.usage;
  }
  if (err instanceof ConfigError) {
    process.stderr.write(err.message + '\n');
    return EXIT.usage;
  }
  if (err instanceof GraywaveError) {
    process.stderr.write(chalk.red(`graywave: ${err.message}`) + '\n' + (err.hint ? `hint: ${err.hint}\n` : ''));
    return err.exitCode;
  }
  process.stderr.write(chalk.red(`graywave: unexpected error: ${(err as Error).message}`) + '\n');
  if (verbose) process.stderr.write(String((err as Error).stack) + '\n');
  else process.stderr.write('this is a bug; run again with --verbose and report it with the output\n');
  return EXIT.halted;
}
