import { relative } from 'node:path';
import { Command, Option } from 'commander';
import { preflight, preflightText, type PreflightReport } from '../app/preflight.js';
import { EXIT, GraywaveError } from '../errors.js';
import { openReleaseFile } from '../playbook/release-file.js';
import type { Train } from '../playbook/train.js';
import { buildTrainPlan, trainHost } from '../plan/train.js';

const problems = (r: PreflightReport) => r.cells.filter((c) => !c.ok).length;

/** `graywave check FILE [--json]`: the preflight on its own — every problem at once, exit 1 on any, nothing changed. */
export function checkCommand(): Command {
  return new Command('check')
    .description(
      'preflight: every host reachable (and sudo), artifact present with room at `to`, every host registered where it will be drained, every waitDrained query and gate monitor answering — all problems at once, nothing changed (a train file: every app)',
    )
    .argument('<file>')
    .option('--json', 'one JSON object')
    .addOption(new Option('--hosts <names>', 'only these hosts (comma-separated; in a train file `app/host`)'))
    .action(async (file: string, opts: { json?: boolean; hosts?: string }) => {
      const hosts = opts.hosts
        ?.split(',')
        .map((h) => h.trim())
        .filter(Boolean);
      const rf = openReleaseFile(file);
      if (rf.kind === 'train') return checkTrain(rf.load(), opts.json, hosts);
      const pb = rf.load();
      const report = await preflight(pb, { hosts });
      process.stdout.write(opts.json ? JSON.stringify(report) + '\n' : preflightText(report) + '\n');
      if (!report.ok) throw new GraywaveError(`preflight: ${problems(report)} problem(s); nothing was changed`, EXIT.halted);
    });
}

/**
 * A release train's preflight: each app's own (its playbook as the train runs it: an app with `deploy: false` is not
 * asked for its artifact), one table per app in start order; exit 1 when any app has a problem. `--json`:
 * `{ok, apps: [{app, ok, checks, hosts, cells}]}`.
 */
async function checkTrain(train: Train, json: boolean | undefined, only: string[] | undefined): Promise<void> {
  const tp = buildTrainPlan(train);
  if (only) {
    const known = new Set(tp.apps.flatMap((a) => a.playbook.hosts.map((h) => trainHost(a.name, h.name))));
    const unknown = only.filter((h) => !known.has(h));
    if (unknown.length) throw new GraywaveError(`check: unknown host(s) ${unknown.join(', ')} in this train (hosts are named app/host)`, EXIT.usage);
  }
  const apps: (PreflightReport & { app: string })[] = [];
  for (const a of tp.apps) {
    const hosts = only?.filter((h) => h.startsWith(`${a.name}/`)).map((h) => h.slice(a.name.length + 1));
    if (hosts && !hosts.length) continue;
    const report = await preflight(a.playbook, { hosts });
    apps.push({ app: a.name, ...report });
    if (!json) process.stdout.write(`app ${a.name} (${relative(process.cwd(), a.playbook.file) || a.playbook.file}):\n${preflightText(report)}\n\n`);
  }
  const bad = apps.filter((r) => !r.ok);
  if (json) process.stdout.write(JSON.stringify({ ok: !bad.length, apps }) + '\n');
  else
    process.stdout.write(
      bad.length
        ? `train ${tp.plan.release}: problems in ${bad.map((r) => r.app).join(', ')}\n`
        : `train ${tp.plan.release}: preflight passed for every app (${apps.map((r) => r.app).join(', ')}): nothing was changed\n`,
    );
  if (bad.length)
    throw new GraywaveError(
      `preflight: ${bad.reduce((n, r) => n + problems(r), 0)} problem(s) in ${bad.map((r) => `app ${r.app}`).join(', ')}; nothing was changed`,
      EXIT.halted,
    );
}
