import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { stateDirOption } from './options.js';
import { reportHtml } from '../report/html.js';
import { reportMarkdown } from '../report/markdown.js';
import { releaseReport } from '../report/train.js';
import { reportSource } from '../report/source.js';

/** `graywave report FILE [--html out.html]`: markdown to stdout; with --html also a self-contained HTML page. */
export function reportCommand(): Command {
  return new Command('report')
    .description('report of a release from its journal: timeline (Gantt), gates, drain waits, failures, rollbacks, operator actions')
    .argument('<file>', 'the playbook or train file, or a journal.jsonl')
    .option('--html <out>', 'also write a self-contained HTML report (no scripts, nothing fetched)')
    .option('--json', 'the report as one JSON object instead of markdown')
    .addOption(stateDirOption())
    .action(async (file: string, opts: { html?: string; json?: boolean; stateDir?: string }) => {
      const { input } = await reportSource(file, opts.stateDir);
      const report = releaseReport(input);
      if (opts.html) writeFileSync(opts.html, reportHtml(report));
      process.stdout.write(opts.json ? JSON.stringify(report) + '\n' : reportMarkdown(report) + '\n');
    });
}
