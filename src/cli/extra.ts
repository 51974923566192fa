import type { Command } from 'commander';
import { demoCommand } from './demo.js';
import { sandboxCommand } from './sandbox.js';
import { reportCommand } from './report.js';
import { logCommand } from './log.js';
import { checkCommand } from './check.js';
import { completionCommand } from './completion.js';
import { explainCommand, initCommand, schemaCommand } from './reference.js';

/** Commands that live in their own modules (sandbox, demo …): one line each. */
export function extraCommands(): Command[] {
  return [
    sandboxCommand(),
    demoCommand(),
    reportCommand(),
    logCommand(),
    checkCommand(),
    completionCommand(),
    explainCommand(),
    schemaCommand(),
    initCommand(),
  ];
}
