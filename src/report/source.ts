import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { journalPath, releaseDir } from '../app/run.js';
import { createBackend } from '../journal/backends.js';
import { EXIT, GraywaveError } from '../errors.js';
import { appOf, readJournal } from '../journal/journal.js';
import type { JournalRecord } from '../journal/records.js';
import { buildPlan } from '../plan/build.js';
import { buildTrainPlan } from '../plan/train.js';
import { openReleaseFile } from '../playbook/release-file.js';
import type { Playbook } from '../playbook/types.js';
import type { AppInput, ReportInput } from './model.js';

type PlanWaves = { index: number; hosts: string[] }[];
type Steps = { name: string; action: string }[];

/** What the playbook (or train file) adds to the journal: its plan's waves and step names, and a train's apps. */
interface Target {
  pb: Playbook;
  planHash: string;
  waves: PlanWaves;
  steps?: Steps;
  apps?: Omit<AppInput, 'hostLog' | 'logPath' | 'logDir'>[];
}

const stepsOf = (pb: Playbook): Steps => pb.steps.map((s) => ({ name: s.name, action: s.action }));

function targetOf(file: string): Target {
  const rf = openReleaseFile(file);
  if (rf.kind === 'playbook') {
    const pb = rf.load();
    const plan = buildPlan(pb);
    return { pb, planHash: plan.planHash, waves: plan.waves, steps: stepsOf(pb) };
  }
  // A release train (issue #18): invalid train or app files throw their FILE:LINE:COL problems (exit 2).
  const tp = buildTrainPlan(rf.load());
  const apps = tp.apps.map((a) => ({
    name: a.name,
    after: a.after,
    deploy: a.deploy,
    version: a.playbook.version,
    waves: a.plan.waves,
    steps: stepsOf(a.playbook),
  }));
  return { pb: tp.playbook, planHash: tp.plan.planHash, waves: tp.plan.waves, apps };
}

/** A host log in `dir` (`<host>.log`): its path when it exists, and its text. */
function logsIn(dir: string): { logPath: (host: string) => string | undefined; hostLog: (host: string) => string | undefined } {
  const logPath = (host: string) => {
    const f = join(dir, `${host}.log`);
    return existsSync(f) ? f : undefined;
  };
  return {
    logPath,
    hostLog: (host) => {
      const f = logPath(host);
      try {
        return f ? readFileSync(f, 'utf8') : undefined;
      } catch {
        return undefined;
      }
    },
  };
}

/**
 * What `graywave report` and `graywave log` read: FILE is a playbook or a train file (its journal lives under the
 * state dir) or a journal file itself (`…/journal.jsonl`, also an archived `journal.<ms>.jsonl`). The playbook only
 * adds names (the plan's waves and the step actions); everything reported comes from the journal and the host logs
 * beside it (a train's app's hosts: `apps/<app>/logs/`, where src/app/train.ts writes them).
 */
export async function reportSource(file: string, stateDir?: string): Promise<{ records: JournalRecord[]; input: ReportInput; journal: string }> {
  let path: string;
  let target: Target | undefined;
  let clusterRecords: JournalRecord[] | undefined;
  if (/\.jsonl$/.test(file)) {
    path = file;
  } else {
    target = targetOf(file);
    const pb = target.pb;
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
  if (!clusterRecords && !existsSync(path))
    throw new GraywaveError(
      `no journal at ${path}: the release has not run here`,
      EXIT.usage,
      'give the playbook (and --state-dir if the run used one) or the path of a journal.jsonl',
    );
  const records = clusterRecords ?? readJournal(path).records;
  const header = records.find((r) => r.type === 'header');
  if (!header)
    throw new GraywaveError(
      `the journal at ${path} holds no release (no header record): the release has not run`,
      EXIT.usage,
      'run it first: graywave run <playbook>',
    );
  // A playbook whose plan differs from the journal's would name the wrong waves: use the journal's own then.
  const plan = target && header.type === 'header' && header.planHash === target.planHash ? target : undefined;
  const dir = dirname(path);
  // A train's journal (its apps' records carry `app`) read without its train file: the apps as the journal names them.
  const apps =
    target?.apps ??
    (records.some((r) => appOf(r) !== undefined) ? [...new Set(records.map(appOf).filter((a): a is string => !!a))].map((name) => ({ name })) : undefined);
  return {
    records,
    journal: path,
    input: {
      records,
      waves: plan?.waves,
      steps: plan?.steps,
      ...logsIn(join(dir, 'logs')),
      ...(apps
        ? {
            apps: apps.map((a) => {
              const logDir = join(dir, 'apps', a.name, 'logs');
              return { ...a, ...(plan ? {} : { waves: undefined, steps: undefined }), ...logsIn(logDir), logDir };
            }),
          }
        : {}),
    },
  };
}
