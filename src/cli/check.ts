import { Command, Option } from 'commander';
import { preflight, preflightText } from '../app/preflight.js';
import { EXIT, GraywaveError } from '../errors.js';
import { loadPlaybook } from '../playbook/load.js';

/** `graywave check FILE [--json]`: the preflight on its own — every problem at once, exit 1 on any, nothing changed. */
export function checkCommand(): Command {
  return new Command('check')
    .description('preflight: every host reachable (and sudo), artifact present with room at `to`, every host registered where it will be drained, every waitDrained query and gate monitor answering — all problems at once, nothing changed')
    .argument('<file>')
    .option('--json', 'one JSON object')
    .addOption(new Option('--hosts <names>', 'only these hosts (comma-separated)'))
    .action(async (file: string, opts: { json?: boolean; hosts?: string }) => {
      const pb = loadPlaybook(file);
      const report = await preflight(pb, { hosts: opts.hosts?.split(',').map((h) => h.trim()).filter(Boolean) });
      process.stdout.write(opts.json ? JSON.stringify(report) + '\n' : preflightText(report) + '\n');
      if (!report.ok) throw new GraywaveError(`preflight: ${report.cells.filter((c) => !c.ok).length} problem(s); nothing was changed`, EXIT.halted);
    });
}
