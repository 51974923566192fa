import type { PendingApproval } from './status.js';
import { resolveLimit } from '../plan/limit.js';
import { ReleaseContext } from '../engine/release.js';
import { rollbackHosts } from '../engine/rollback.js';
import { Engine } from '../engine/run.js';
import { EXIT, GraywaveError } from '../errors.js';
import { currentActor } from '../journal/lock.js';
import { inEffect, type RunState } from '../journal/replay.js';
import { buildPlan, type Plan } from '../plan/build.js';
import { openReleaseFile } from '../playbook/release-file.js';
import type { Playbook } from '../playbook/types.js';
import { confirm, isTerminal } from './deps.js';
import { confirmed, exitFor, recordApproval, recordRollback, releaseDone } from './shared.js';
import { trainApprove, trainRelease, trainRollback } from './train.js';
import { relative } from 'node:path';
import { waveList } from '../render/hints.js';
import { openRelease, withHotfix, type ReleaseRequest } from './open.js';
import { preflight, preflightText } from './preflight.js';
import { playbookStatus } from './status.js';
import { createTransport } from '../transport/index.js';
import { Secrets } from '../util/secrets.js';

export type { OutputMode } from './deps.js';
export { controlRelease, unlockRelease, waitForRelease } from './control.js';
export { withHotfix, type ReleaseRequest } from './open.js';
export { journalPath, releaseDir } from './paths.js';

/** The command's playbook, loaded once (with `run --hotfix`, under the hotfix policy). */
function loadFor(req: ReleaseRequest, load: () => Playbook): Playbook {
  const pb = load();
  return req.hotfix ? withHotfix(pb, req.reason) : pb;
}

/**
 * The preflight before run/resume (resume: only the hosts not started yet — a drained host may rightly read as
 * not registered now): true when the release may start. Problems go to stderr (a JSON line with --json).
 */
async function preflightPasses(req: ReleaseRequest, pb: Playbook, how: 'run' | 'resume'): Promise<boolean> {
  if (!req.preflight) return true;
  let hosts: string[] | undefined;
  if (how === 'resume') {
    const st = await playbookStatus(pb, buildPlan(pb), req.file, req.stateDir);
    hosts = st.waves.flatMap((w) => w.hosts.filter((h) => h.status === 'pending').map((h) => h.host));
  }
  if (req.limit) {
    const only = resolveLimit(pb.hosts, req.limit);
    hosts = (hosts ?? pb.hosts.map((h) => h.name)).filter((h) => only.has(h));
  }
  const report = await preflight(pb, { hosts, transport: req.transport, signal: req.signal });
  if (report.ok) return true;
  if (req.output === 'json') process.stdout.write(JSON.stringify({ event: 'preflight.failed', release: pb.name, ...report }) + '\n');
  else process.stderr.write(`${preflightText(report)}\nthe release did not start (graywave check ${req.file} repeats this; --skip-preflight skips it)\n`);
  return false;
}

/** `run` and `resume`: one body. Resolves to the exit code. */
async function release(req: ReleaseRequest, how: 'run' | 'resume', load: () => Playbook): Promise<number> {
  const pb = loadFor(req, load);
  const plan = buildPlan(pb);
  if (req.limit) resolveLimit(pb.hosts, req.limit); // a --limit that matches nothing is refused before anything else
  if (how === 'run' && !req.again && (await releaseDone(req, pb))) {
    if (!isTerminal() || req.yes)
      throw new GraywaveError(
        `release ${pb.name} ${pb.version} is already done (its journal says so): not running it again`,
        EXIT.usage,
        'pass --again to run it once more, or change the version (--set version=…)',
      );
    if (!(await confirm(`Release ${pb.name} ${pb.version} is already done (its journal says so). Run it again?`))) return EXIT.halted;
    req = { ...req, again: true };
  }
  const question =
    how === 'run'
      ? `Release ${pb.name} ${pb.version} to ${req.limit ? `${resolveLimit(pb.hosts, req.limit).size} of ` : ''}${pb.hosts.length} hosts in ${plan.waves.length} waves?`
      : `Resume release ${pb.name} ${pb.version}?`;
  if (!(await confirmed(req, question))) return EXIT.halted;
  // The preflight's connections (one per host over ssh) are the release's: the same transport (and the secrets it
  // resolved, so the release masks them too) goes on to the run.
  const secrets = new Secrets(pb.dir);
  const shared = req.preflight && !req.transport ? createTransport(pb.transport, { dir: pb.dir, secrets }) : undefined;
  if (shared) req = { ...req, transport: shared, secrets };
  if (!(await preflightPasses(req, pb, how).catch(async (err: unknown) => (await shared?.close(), Promise.reject(err))))) {
    await shared?.close();
    return EXIT.halted;
  }
  const o = await openRelease(req, pb, how, how === 'run' ? 'run' : 'existing').catch(async (err: unknown) => {
    await shared?.close();
    throw err;
  });
  try {
    // Under the hotfix policy `run` carries the hotfix reason (the playbook's `reason:` when run without --reason).
    const operator = how === 'run' && pb.hotfix ? { reason: req.reason ?? pb.hotfix.reason, detail: 'hotfix' } : { reason: req.reason };
    await o.journal.append({ type: 'operator', t: new Date().toISOString(), action: how, by: currentActor(), ...operator });
    if (o.state.status === 'done') {
      o.deps.emit({ event: 'run.done', release: o.pb.name, version: o.pb.version, hosts: o.pb.hosts.length, waves: o.plan.waves.length, ms: 0, failed: [] });
      return EXIT.ok;
    }
    return exitFor[await new Engine(o.deps).run(how === 'resume')];
  } finally {
    await o.finish();
  }
}

/** `graywave run`: starts a release (or reports one already done). Resolves to the exit code. */
export function runRelease(req: ReleaseRequest): Promise<number> {
  const rf = openReleaseFile(req.file);
  return rf.kind === 'train' ? trainRelease(req, 'run', rf.load) : release(req, 'run', rf.load);
}

/** `graywave resume`: continues from the exact step where each host stopped. */
export function resumeRelease(req: ReleaseRequest): Promise<number> {
  const rf = openReleaseFile(req.file);
  return rf.kind === 'train' ? trainRelease(req, 'resume', rf.load) : release(req, 'resume', rf.load);
}

/** The waves a rollback touches: the current (newest started) wave, or every started wave with `all`. */
export function rollbackWaves(plan: Plan, state: RunState, all: boolean): number[] {
  const touched = plan.waves.filter((w) => w.hosts.some((h) => state.hosts.has(h))).map((w) => w.index);
  if (all) return touched;
  return touched.length ? [Math.max(...touched)] : [];
}

/** Waves with a host that has a step in effect (done or begun, not undone). */
function leftToUndo(plan: Plan, state: RunState): number[] {
  return plan.waves.filter((w) => w.hosts.some((h) => inEffect(state.hosts.get(h)))).map((w) => w.index);
}

/** `graywave rollback [--all]`: undoes completed steps in reverse order, newest wave first. */
export async function rollbackRelease(req: ReleaseRequest & { all?: boolean; fast?: boolean }): Promise<number> {
  const rf = openReleaseFile(req.file);
  if (rf.kind === 'train') return trainRollback(req, rf.load);
  const pb = loadFor(req, rf.load);
  const all = req.all || req.fast;
  if (
    !(await confirmed(req, `Roll back ${all ? 'every wave' : 'the current wave'} of ${pb.name} ${pb.version}${req.fast ? ' (fast: all hosts at once)' : ''}?`))
  )
    return EXIT.halted;
  const o = await openRelease(req, pb, 'rollback', 'existing');
  try {
    if (o.state.status === 'frozen' && !req.force) {
      throw new GraywaveError(
        `release ${pb.name} is frozen (${o.state.reason ?? 'onFailure: freeze'}): it was kept as it is on purpose`,
        EXIT.usage,
        'if rolling back is safe after all, pass --force',
      );
    }
    // --limit: the chosen hosts in every wave they ran in; the rest of the release stays as it is.
    const waves = rollbackWaves(o.plan, o.state, !!all || !!req.limit);
    const left = leftToUndo(o.plan, o.state);
    if (!all && !req.limit && waves.length && !waves.some((w) => left.includes(w)) && left.length) {
      const file = relative(process.cwd(), req.file) || req.file;
      throw new GraywaveError(
        `nothing left to undo in wave ${waves.join(', ')} (already rolled back); wave${left.length > 1 ? 's' : ''} ${waveList(left)} still ${left.length > 1 ? 'carry' : 'carries'} the release`,
        EXIT.usage,
        `graywave rollback ${file} --all${req.stateDir ? ` --state-dir ${req.stateDir}` : ''} undoes every wave`,
      );
    }
    await recordRollback(o.journal, req, all, waves);
    const rc = new ReleaseContext(o.deps);
    const ok = await rollbackHosts(rc, { waves, undoSwitchover: !!all && !req.limit, fast: req.fast }).finally(() => rc.close());
    const limited = o.deps.limit ? ` (--limit: ${[...o.deps.limit].join(', ')}; the other hosts are as they were)` : '';
    await o.journal.append({
      type: 'run',
      t: new Date().toISOString(),
      phase: ok && !limited ? 'rolled-back' : 'halted',
      reason: ok ? `rolled back wave(s) ${waves.join(', ')}${limited}` : 'rollback incomplete: some undo steps failed',
    });
    return ok ? EXIT.ok : EXIT.halted;
  } finally {
    await o.finish();
  }
}

/** `graywave approve`: records a person's go for the wave that waits (or the newest finished wave). */
export async function approveRelease(req: ReleaseRequest): Promise<{ code: number; wave?: number; apps?: PendingApproval[] }> {
  const rf = openReleaseFile(req.file);
  if (rf.kind === 'train') return trainApprove(req, rf.load);
  const pb = loadFor(req, rf.load);
  if (!(await confirmed(req, `Approve the next wave of ${pb.name} ${pb.version}?`))) return { code: EXIT.halted };
  const o = await openRelease(req, pb, 'approve', 'existing');
  try {
    // Only a wave with another one after it can wait for approval (or any wave a marginal judge paused); a finished
    // release has nothing to approve.
    const wave = await recordApproval(o.journal, o.plan, o.state, req.reason);
    return { code: EXIT.ok, wave };
  } finally {
    await o.finish();
  }
}
