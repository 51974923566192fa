import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { journalPath, releaseDir } from '../app/run.js';
import { createBackend } from '../journal/backends.js';
import { EXIT, GraywaveError } from '../errors.js';
import { readJournal } from '../journal/journal.js';
import type { JournalRecord } from '../journal/records.js';
import { buildPlan } from '../plan/build.js';
import { loadPlaybook } from '../playbook/load.js';
import type { ReportInput } from './model.js';

/**
 * What `graywave report` and `graywave log` read: FILE is a playbook (its journal lives under the state dir) or a
 * journal file itself (`…/journal.jsonl`, also an archived `journal.<ms>.jsonl`). The playbook only adds names (the
 * plan's waves and the step actions); everything reported comes from the journal and the host logs beside it.
 */
export async function reportSource(file: string, stateDir?: string): Promise<{ records: JournalRecord[]; input: ReportInput; journal: string }> {
  let path: string;
  let plan: { waves: { index: number; hosts: string[] }[]; planHash: string } | undefined;
  let steps: { name: string; action: string }[] | undefined;
  let clusterRecords: JournalRecord[] | undefined;
  if (/\.jsonl$/.test(file)) {
    path = file;
  } else {
    const pb = loadPlaybook(file);
    plan = buildPlan(pb);
    steps = pb.steps.map((s) => ({ name: s.name, action: s.action }));
    path = journalPath(pb, stateDir);
    if (pb.state && pb.state.type !== 'file') {
      // The journal lives in a cluster (state: etcd/zookeeper); host logs stay local, next to where the file journal would be.
      const backend = createBackend(pb, releaseDir(pb, stateDir));
      try {
        clusterRecords = await backend.readRecords();
      } finally {
        await backend.close();
      }
      if (!clusterRecords.length) throw new GraywaveError(`no journal for release ${pb.name} in ${backend.where}: the release has not run`, EXIT.usage);
    }
  }
  if (!clusterRecords && !existsSync(path)) throw new GraywaveError(`no journal at ${path}: the release has not run here`, EXIT.usage, 'give the playbook (and --state-dir if the run used one) or the path of a journal.jsonl');
  const records = clusterRecords ?? readJournal(path).records;
  const header = records.find((r) => r.type === 'header');
  if (!header) throw new GraywaveError(`the journal at ${path} holds no release (no header record): the release has not run`, EXIT.usage, 'run it first: graywave run <playbook>');
  // A playbook whose plan differs from the journal's would name the wrong waves: use the journal's own then.
  if (plan && header && header.type === 'header' && header.planHash !== plan.planHash) {
    plan = undefined;
    steps = undefined;
  }
  const logDir = join(dirname(path), 'logs');
  return {
    records,
    journal: path,
    input: {
      records,
      waves: plan?.waves,
      steps,
      hostLog: (host) => {
        const f = join(logDir, `${host}.log`);
        try {
          return existsSync(f) ? readFileSync(f, 'utf8') : undefined;
        } catch {
          return undefined;
        }
      },
    },
  };
}
