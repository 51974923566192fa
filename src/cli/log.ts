import { Command } from 'commander';
import { stateDirOption } from './options.js';
import { auditText, auditTrail } from '../report/audit.js';
import { reportSource } from '../report/source.js';
import { partOf } from '../journal/journal.js';

/** `graywave log FILE`: the audit trail — who ran, resumed, approved, rolled back, forced; when and why. */
export function logCommand(): Command {
  return new Command('log')
    .description('audit trail of a release: every operator action (user, host, time, reason) and the outcomes between them')
    .argument('<file>', 'the playbook, or a journal.jsonl')
    .option('--json', 'one JSON object per line')
    .option('--actions-only', 'only what people did, not the outcomes')
    .addOption(stateDirOption())
    .action(async (file: string, opts: { json?: boolean; actionsOnly?: boolean; stateDir?: string }) => {
      const { records } = await reportSource(file, opts.stateDir);
      // A train's journal: the train's own records (its operator actions and outcomes; an app's part is not a second release).
      const entries = auditTrail(partOf(records, undefined)).filter((e) => !opts.actionsOnly || e.operator);
      process.stdout.write(opts.json ? entries.map((e) => JSON.stringify(e) + '\n').join('') : auditText(entries) + '\n');
    });
}
