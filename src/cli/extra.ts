import type { Command } from 'commander';

/** Commands that live in their own modules (sandbox, demo …): one line each. */
export function extraCommands(): Command[] {
  return [];
}
