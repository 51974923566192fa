import { findAction } from '../actions/index.js';
import { inEffect, type StepState } from '../journal/replay.js';
import type { Host, StepSpec } from '../playbook/types.js';
import { changesInEffect } from '../routing/run.js';
import { now, type ReleaseContext } from './release.js';
import { undoStep } from './step.js';
import { undoSwitchover } from './switchover.js';

/**
 * Undoes, newest wave first and each host's steps in reverse order, every step that took effect
 * (done, or did-but-not-done). Steps without an undo are reported as skipped. A host whose undo fails
 * stops there (undoing earlier steps out of order could make things worse) and is reported.
 * Returns true when nothing failed.
 */
export async function rollbackHosts(rc: ReleaseContext, opts: { waves: number[]; undoSwitchover: boolean; fast?: boolean }): Promise<boolean> {
  const { playbook, plan, journal } = rc.deps;
  const state = rc.state;
  const t0 = Date.now();
  const waves = [...opts.waves].sort((a, b) => b - a);
  const touched = (name: string) => {
    const h = state.hosts.get(name);
    return (!rc.deps.limit || rc.deps.limit.has(name)) && inEffect(h);
  };
  let hostsByWave = waves.map((w) => ({ wave: w, hosts: (plan.waves.find((p) => p.index === w)?.hosts ?? []).filter(touched) }));
  // --fast: every touched host at once, in one wave, without the canary pacing (each host's undo order — and
  // so its drains — is unchanged).
  const fastConcurrency = opts.fast
    ? Math.max(
        1,
        hostsByWave.reduce((n, w) => n + w.hosts.length, 0),
      )
    : undefined;
  if (opts.fast) hostsByWave = [{ wave: Math.min(...waves), hosts: hostsByWave.flatMap((w) => w.hosts) }];
  const allHosts = hostsByWave.flatMap((w) => w.hosts);
  rc.emit({ event: 'rollback.start', release: rc.release, waves, hosts: allHosts });
  await rc.record({ type: 'run', t: now(), phase: 'rollback' });
  const failedHosts: string[] = [];

  // Routing rules first (newest change first): traffic is steered back to BLUE before any host goes back.
  if (opts.undoSwitchover && changesInEffect(journal.records).length) {
    if (!(await rc.routing().undo())) failedHosts.push('_routing');
  }

  // The switchover is undone in its place in time: after the waves that came after it, before its own wave,
  // so that public traffic goes back to BLUE only once the hosts released after it are BLUE again.
  let switchoverPending = opts.undoSwitchover && (state.switchover.started || state.switchover.done);
  const undoSwitchoverNow = async () => {
    switchoverPending = false;
    if (!(await undoSwitchover(rc))) failedHosts.push('_switchover');
  };
  for (const { wave, hosts } of hostsByWave) {
    if (switchoverPending && wave <= (plan.switchoverAfterWave ?? Infinity)) await undoSwitchoverNow();
    let next = 0;
    const worker = async () => {
      while (next < hosts.length) {
        const name = hosts[next++]!;
        const hostWave = state.hosts.get(name)?.wave ?? wave;
        const started = Date.now();
        const ok = await undoHost(rc, hostWave, rc.host(name));
        rc.emit({ event: 'host.undone', release: rc.release, wave: hostWave, host: name, ok, ms: Date.now() - started });
        if (!ok) failedHosts.push(name);
      }
    };
    await Promise.all(Array.from({ length: Math.min(fastConcurrency ?? playbook.waves.concurrency, hosts.length) }, worker));
  }
  if (switchoverPending) await undoSwitchoverNow();
  const ok = failedHosts.length === 0;
  rc.emit({ event: 'rollback.done', release: rc.release, hosts: allHosts, failed: failedHosts, ms: Date.now() - t0 });
  return ok;
}

/** Why a step is not undone (skipped), or undefined when its undo runs. */
function skipReason(step: StepSpec, st: StepState): { error: string; reason: string } | undefined {
  const action = findAction(step.action)!;
  const tookEffect =
    st.phase === 'done' ||
    st.phase === 'did' ||
    st.phase === 'undo-failed' ||
    st.phase === 'undo-started' ||
    ((st.phase === 'failed' || st.phase === 'started') && (st.hasData || !!action.undoAfterFailure));
  if (!tookEffect) {
    return st.phase === 'failed'
      ? { error: 'the step failed: nothing recorded to undo', reason: 'step had failed' }
      : { error: 'the step did not complete', reason: 'step had not completed' };
  }
  const hasUndo = action.undo && (action.hasUndo ? action.hasUndo(step.params) : true);
  return hasUndo ? undefined : { error: 'no undo defined', reason: 'no undo defined' };
}

async function undoHost(rc: ReleaseContext, wave: number, host: Host): Promise<boolean> {
  const h = rc.state.hosts.get(host.name);
  if (!h) return true;
  try {
    for (const step of [...rc.deps.playbook.steps].reverse()) {
      const st = h.steps.get(step.name);
      if (!st || st.phase === 'undone' || st.phase === 'undo-skipped') continue;
      const skip = skipReason(step, st);
      if (skip) {
        await rc.record({ type: 'step', t: now(), wave, host: host.name, step: step.name, phase: 'undo-skipped', error: skip.error });
        rc.emit({ event: 'undo.skipped', release: rc.release, wave, host: host.name, step: step.name, reason: skip.reason });
        continue;
      }
      if ((await undoStep(rc, wave, host, step, st.data)) !== undefined) return false;
    }
    return true;
  } finally {
    await rc.deps.transport.release(host).catch(() => undefined);
    rc.closeLog(host.name);
  }
}
