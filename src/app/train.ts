import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { TrainEngine, type TrainDeps } from '../engine/train.js';
import { EXIT, GraywaveError } from '../errors.js';
import { createBackend } from '../journal/backends.js';
import { JournalView, type Journal } from '../journal/journal.js';
import { currentActor } from '../journal/lock.js';
import { inEffect, replay, type RunState } from '../journal/replay.js';
import { buildTrainPlan, trainHost, type TrainPlan } from '../plan/train.js';
import type { Train } from '../playbook/train.js';
import { buildDeps } from './deps.js';
import { lock, settleJournal, type ReleaseRequest } from './open.js';
import { releaseDir } from './paths.js';
import { preflight, preflightText } from './preflight.js';
import { confirmed, exitFor, recordApproval, recordRollback, releaseDone } from './shared.js';
import { pendingApprovals, trainStatus, type PendingApproval } from './status.js';
import { confirm, isTerminal } from './deps.js';

/**
 * Release trains (issue #18) as commands: run, resume, rollback, approve and status of a train file. One lock and
 * one journal (in the train's state directory) hold every app; each app's records carry its name
 * (src/journal/journal.ts JournalView). The engine is src/engine/train.ts; the plan src/plan/train.ts.
 */

/** The command's train and its plan (`load`: src/playbook/release-file.ts); refuses what a train does not take first. */
function loadFor(req: ReleaseRequest, load: () => Train): TrainPlan {
  if (req.hotfix) throw new GraywaveError('--hotfix is not available for a release train: release the hotfix of one app with its own playbook', EXIT.usage);
  if (req.limit)
    throw new GraywaveError('--limit is not available for a release train yet: limit one app with its own playbook, or run the whole train', EXIT.usage);
  return buildTrainPlan(load());
}

interface OpenedTrain {
  tp: TrainPlan;
  journal: Journal;
  /** The train's own state (its waves, approvals, switchover, run status). */
  state: RunState;
  deps: TrainDeps;
  finish(): Promise<void>;
}

/** Locks the train, settles its journal (the same policy as a playbook's) and builds the train's and every app's deps. */
async function openTrain(req: ReleaseRequest, tp: TrainPlan, command: string, mode: 'run' | 'existing'): Promise<OpenedTrain> {
  const pb = tp.playbook;
  const dir = releaseDir(pb, req.stateDir);
  mkdirSync(dir, { recursive: true });
  const backend = createBackend(pb, dir);
  const unlock = await lock(backend, req, command);
  const finishers: (() => Promise<void>)[] = [];
  try {
    const { journal, state } = await settleJournal(backend, await backend.openJournal(), { req, pb, plan: tp.plan, dir, command, mode });
    const train = buildDeps(pb, tp.plan, new JournalView(journal, undefined), {
      dir,
      backend,
      output: req.output,
      onEvent: req.onEvent,
      signal: req.signal,
      file: req.file,
      stateDir: req.stateDir,
    });
    const apps = tp.apps.map((a) => {
      const built = buildDeps(a.playbook, a.plan, new JournalView(journal, a.name), {
        dir: join(dir, 'apps', a.name),
        backend,
        signal: train.deps.signal,
        sink: () => undefined,
      });
      finishers.push(() => built.finish());
      return { name: a.name, after: a.after, deps: { ...built.deps, approve: train.deps.approve, controls: undefined } };
    });
    finishers.push(() => train.finish());
    return {
      tp,
      journal,
      state,
      deps: { train: train.deps, apps },
      async finish() {
        for (const f of finishers) await f().catch(() => undefined);
        journal.close();
        await unlock();
      },
    };
  } catch (err) {
    for (const f of finishers) await f().catch(() => undefined);
    await unlock();
    throw err;
  }
}

/** The preflight of every app (resume: only its hosts not started yet); true when the train may start. */
async function preflightPasses(req: ReleaseRequest, tp: TrainPlan, how: 'run' | 'resume'): Promise<boolean> {
  if (!req.preflight) return true;
  const pending =
    how === 'resume'
      ? new Set((await trainStatus(req.file, req.stateDir, tp)).waves.flatMap((w) => w.hosts.filter((h) => h.status === 'pending').map((h) => h.host)))
      : undefined;
  let ok = true;
  for (const a of tp.apps) {
    const hosts = pending ? a.playbook.hosts.map((h) => h.name).filter((h) => pending.has(trainHost(a.name, h))) : undefined;
    if (hosts && !hosts.length) continue;
    const report = await preflight(a.playbook, { hosts, signal: req.signal });
    if (report.ok) continue;
    ok = false;
    if (req.output === 'json') process.stdout.write(JSON.stringify({ event: 'preflight.failed', release: tp.plan.release, app: a.name, ...report }) + '\n');
    else process.stderr.write(`app ${a.name}:\n${preflightText(report)}\n`);
  }
  if (!ok && req.output !== 'json')
    process.stderr.write(`the train did not start (graywave check on each app's playbook repeats this; --skip-preflight skips it)\n`);
  return ok;
}

/** `run` and `resume` of a train. Resolves to the exit code. */
export async function trainRelease(req: ReleaseRequest, how: 'run' | 'resume', load: () => Train): Promise<number> {
  const tp = loadFor(req, load);
  const { release: name, version } = tp.plan;
  if (how === 'run' && !req.again && (await releaseDone(req, tp.playbook))) {
    if (!isTerminal() || req.yes)
      throw new GraywaveError(
        `release train ${name} ${version} is already done (its journal says so): not running it again`,
        EXIT.usage,
        'pass --again to run it once more, or change the version (--set version=…)',
      );
    if (!(await confirm(`Release train ${name} ${version} is already done (its journal says so). Run it again?`))) return EXIT.halted;
    req = { ...req, again: true };
  }
  const hosts = tp.apps.reduce((n, a) => n + a.playbook.hosts.length, 0);
  const question =
    how === 'run'
      ? `Release train ${name} ${version}: ${tp.apps.length} apps, ${hosts} hosts in ${tp.plan.waves.length} waves?`
      : `Resume release train ${name} ${version}?`;
  if (!(await confirmed(req, question))) return EXIT.halted;
  if (!(await preflightPasses(req, tp, how))) return EXIT.halted;
  const o = await openTrain(req, tp, how, how === 'run' ? 'run' : 'existing');
  try {
    await o.deps.train.journal.append({ type: 'operator', t: new Date().toISOString(), action: how, by: currentActor(), reason: req.reason });
    if (o.state.status === 'done') {
      o.deps.train.emit({ event: 'run.done', release: name, version, hosts, waves: tp.plan.waves.length, ms: 0, failed: [] });
      return EXIT.ok;
    }
    return exitFor[await new TrainEngine(o.deps).run(how === 'resume')];
  } finally {
    await o.finish();
  }
}

/** Train waves in which some app has a host whose steps are in effect (not undone). */
function wavesInEffect(o: OpenedTrain): number[] {
  const states = o.deps.apps.map((a) => ({ plan: a.deps.plan, state: replay(a.deps.journal.records) }));
  return o.tp.plan.waves
    .map((w) => w.index)
    .filter((k) => states.some(({ plan, state }) => (plan.waves.find((w) => w.index === k)?.hosts ?? []).some((h) => inEffect(state.hosts.get(h)))));
}

/** `rollback [--all]` of a train: the current wave (or every wave), newest first, every app in reverse start order. */
export async function trainRollback(req: ReleaseRequest & { all?: boolean; fast?: boolean }, load: () => Train): Promise<number> {
  const tp = loadFor(req, load);
  const all = !!(req.all || req.fast);
  if (!(await confirmed(req, `Roll back ${all ? 'every wave' : 'the current wave'} of release train ${tp.plan.release} ${tp.plan.version} (every app)?`)))
    return EXIT.halted;
  const o = await openTrain(req, tp, 'rollback', 'existing');
  try {
    if (o.state.status === 'frozen' && !req.force)
      throw new GraywaveError(
        `release train ${tp.plan.release} is frozen (${o.state.reason ?? 'onFailure: freeze'}): it was kept as it is on purpose`,
        EXIT.usage,
        'if rolling back is safe after all, pass --force',
      );
    const inEffect = wavesInEffect(o);
    const waves = all ? inEffect : inEffect.length ? [Math.max(...inEffect)] : [];
    await recordRollback(o.deps.train.journal, req, all, waves);
    const ok = await new TrainEngine(o.deps).rollback({ waves, undoSwitchover: all, fast: req.fast });
    const left = wavesInEffect(o);
    const phase = ok && (all || !left.length) ? 'rolled-back' : 'halted';
    const reason = ok
      ? `rolled back wave(s) ${waves.join(', ') || '(none in effect)'} of every app${left.length ? `; wave(s) ${left.join(', ')} still carry the release` : ''}`
      : 'rollback incomplete: some undo steps failed';
    await o.deps.train.journal.append({ type: 'run', t: new Date().toISOString(), phase, reason });
    return ok ? EXIT.ok : EXIT.halted;
  } finally {
    await o.finish();
  }
}

/**
 * `approve` of a train: what it waits for — each app's check that paused it (a marginal or inconclusive judge: the
 * approval is that app's, so resume lets its verdict through), else the train's wave that waits.
 */
export async function trainApprove(req: ReleaseRequest, load: () => Train): Promise<{ code: number; wave?: number; apps?: PendingApproval[] }> {
  const tp = loadFor(req, load);
  if (!(await confirmed(req, `Approve what release train ${tp.plan.release} ${tp.plan.version} waits for?`))) return { code: EXIT.halted };
  const o = await openTrain(req, tp, 'approve', 'existing');
  try {
    const apps = pendingApprovals(
      o.journal.records,
      tp.apps.map((a) => a.name),
    ).filter((p) => p.app);
    if (!apps.length) return { code: EXIT.ok, wave: await recordApproval(o.deps.train.journal, tp.plan, o.state, req.reason) };
    const by = currentActor();
    for (const p of apps)
      await o.deps.apps.find((a) => a.name === p.app)!.deps.journal.append({ type: 'wave', t: new Date().toISOString(), wave: p.wave, phase: 'approved', by });
    const detail = apps.map((p) => `app ${p.app} wave ${p.wave}: ${p.detail}`).join('; ');
    await o.deps.train.journal.append({ type: 'operator', t: new Date().toISOString(), action: 'approve', by, reason: req.reason, detail });
    return { code: EXIT.ok, wave: Math.min(...apps.map((p) => p.wave)), apps };
  } finally {
    await o.finish();
  }
}
