import { findAction } from '../actions/index.js';
import { ProviderError } from '../errors.js';
import type { JournalRecord } from '../journal/records.js';
import type { RunState } from '../journal/replay.js';
import type { Host } from '../playbook/types.js';
import { formatMs } from '../util/duration.js';
import { HostLog, Tail, type EngineDeps } from './context.js';
import { abortable, Engine } from './run.js';
import { changesInEffect, RoutingRunner } from '../routing/run.js';

const now = () => new Date().toISOString();

/**
 * Undoes, newest wave first and each host's steps in reverse order, every step that took effect
 * (done, or did-but-not-done). Steps without an undo are reported as skipped. A host whose undo fails
 * stops there (undoing earlier steps out of order could make things worse) and is reported.
 * Returns true when nothing failed.
 */
export async function rollbackHosts(deps: EngineDeps, state: RunState, opts: { waves: number[]; undoSwitchover: boolean; fast?: boolean }): Promise<boolean> {
  const { playbook, plan, journal } = deps;
  const release = playbook.name;
  const t0 = Date.now();
  const byName = new Map(playbook.hosts.map((h) => [h.name, h]));
  const waves = [...opts.waves].sort((a, b) => b - a);
  const touched = (name: string) => {
    const h = state.hosts.get(name);
    return !!h && [...h.steps.values()].some((s) => s.phase !== 'undone' && s.phase !== 'undo-skipped');
  };
  let hostsByWave = waves.map((w) => ({ wave: w, hosts: (plan.waves.find((p) => p.index === w)?.hosts ?? []).filter(touched) }));
  // --fast: every touched host at once, in one wave, without the canary pacing (each host's undo order — and
  // so its drains — is unchanged).
  const fastConcurrency = opts.fast ? Math.max(1, hostsByWave.reduce((n, w) => n + w.hosts.length, 0)) : undefined;
  if (opts.fast) hostsByWave = [{ wave: Math.min(...waves), hosts: hostsByWave.flatMap((w) => w.hosts) }];
  const allHosts = hostsByWave.flatMap((w) => w.hosts);
  deps.emit({ event: 'rollback.start', release, waves, hosts: allHosts });
  await journal.append({ type: 'run', t: now(), phase: 'rollback' });
  const failedHosts: string[] = [];
  const engine = new Engine(deps);

  // Routing rules first (newest change first): traffic is steered back to BLUE before any host goes back.
  if (opts.undoSwitchover && changesInEffect(journal.records).length) {
    const routing = new RoutingRunner(deps);
    try {
      if (!(await routing.undo())) failedHosts.push('_routing');
    } finally {
      await routing.close();
    }
  }

  // The switchover is undone in its place in time: after the waves that came after it, before its own wave,
  // so that public traffic goes back to BLUE only once the hosts released after it are BLUE again.
  let switchoverPending = opts.undoSwitchover && (state.switchover.started || state.switchover.done);
  const undoSwitchoverNow = async () => {
    switchoverPending = false;
    const ok = await undoSwitchover(deps, state, engine);
    if (!ok) failedHosts.push('_switchover');
  };
  for (const { wave, hosts } of hostsByWave) {
    if (switchoverPending && wave <= (plan.switchoverAfterWave ?? Infinity)) await undoSwitchoverNow();
    let next = 0;
    const worker = async () => {
      while (next < hosts.length) {
        const name = hosts[next++]!;
        const ok = await undoHost(deps, state, engine, state.hosts.get(name)?.wave ?? wave, byName.get(name)!);
        if (!ok) failedHosts.push(name);
      }
    };
    await Promise.all(Array.from({ length: Math.min(fastConcurrency ?? playbook.waves.concurrency, hosts.length) }, worker));
  }
  if (switchoverPending) await undoSwitchoverNow();
  const ok = failedHosts.length === 0;
  deps.emit({ event: 'rollback.done', release, hosts: allHosts, failed: failedHosts, ms: Date.now() - t0 });
  return ok;
}

async function undoHost(deps: EngineDeps, state: RunState, engine: Engine, wave: number, host: Host): Promise<boolean> {
  const { playbook, journal, secrets } = deps;
  const release = playbook.name;
  const h = state.hosts.get(host.name);
  if (!h) return true;
  const log = new HostLog(deps.logDir, host.name, secrets);
  const rec = async (step: string, phase: Extract<JournalRecord, { type: 'step' }>['phase'], extra: { error?: string; ms?: number } = {}) => {
    await journal.append({ type: 'step', t: now(), wave, host: host.name, step, phase, ...extra });
  };
  try {
    for (const step of [...playbook.steps].reverse()) {
      const st = h.steps.get(step.name);
      if (!st || st.phase === 'undone' || st.phase === 'undo-skipped') continue;
      const action = findAction(step.action)!;
      const tookEffect =
        st.phase === 'done' ||
        st.phase === 'did' ||
        st.phase === 'undo-failed' ||
        st.phase === 'undo-started' ||
        ((st.phase === 'failed' || st.phase === 'started') && (st.hasData || !!action.undoAfterFailure));
      const hasUndo = action.undo && (action.hasUndo ? action.hasUndo(step.params) : true);
      if (!tookEffect) {
        await rec(step.name, 'undo-skipped', { error: st.phase === 'failed' ? 'the step failed: nothing recorded to undo' : 'the step did not complete' });
        deps.emit({ event: 'undo.skipped', release, wave, host: host.name, step: step.name, reason: st.phase === 'failed' ? 'step had failed' : 'step had not completed' });
        continue;
      }
      if (!hasUndo) {
        await rec(step.name, 'undo-skipped', { error: 'no undo defined' });
        deps.emit({ event: 'undo.skipped', release, wave, host: host.name, step: step.name, reason: 'no undo defined' });
        continue;
      }
      const t0 = Date.now();
      await rec(step.name, 'undo-started');
      log.line(`--- undo ${step.name} ---`);
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(new ProviderError(`undo timed out after ${formatMs(step.timeoutMs)}`)), step.timeoutMs);
      const onAbort = () => ctl.abort(new ProviderError('interrupted (Ctrl-C)'));
      deps.signal.addEventListener('abort', onAbort, { once: true });
      const ctx = engine.stepContext(wave, host, step, ctl.signal, t0 + step.timeoutMs, log, new Tail(), st.data);
      let lastErr: Error | undefined;
      for (let attempt = 1; attempt <= step.retries + 1; attempt++) {
        try {
          await abortable(action.undo!(ctx, step.params, st.data), ctl.signal);
          lastErr = undefined;
          break;
        } catch (err) {
          lastErr = ctl.signal.aborted && ctl.signal.reason instanceof Error ? ctl.signal.reason : (err as Error);
          if (ctl.signal.aborted) break;
        }
      }
      clearTimeout(timer);
      deps.signal.removeEventListener('abort', onAbort);
      if (lastErr) {
        const error = secrets.mask(lastErr.message);
        await rec(step.name, 'undo-failed', { error, ms: Date.now() - t0 });
        deps.emit({ event: 'undo.failed', release, wave, host: host.name, step: step.name, error });
        log.line(`--- undo ${step.name} failed: ${error} ---`);
        return false;
      }
      await rec(step.name, 'undone', { ms: Date.now() - t0 });
      deps.emit({ event: 'undo.done', release, wave, host: host.name, step: step.name, ms: Date.now() - t0 });
    }
    return true;
  } finally {
    await deps.transport.release(host).catch(() => undefined);
    log.close();
  }
}

async function undoSwitchover(deps: EngineDeps, state: RunState, engine: Engine): Promise<boolean> {
  const so = deps.playbook.switchover;
  if (!so) return true;
  const log = new HostLog(deps.logDir, '_switchover', deps.secrets);
  const wave = deps.plan.switchoverAfterWave ?? 0;
  try {
    for (const step of [...so.steps].reverse()) {
      if (state.switchover.steps.get(step.name) !== 'done') continue;
      const action = findAction(step.action)!;
      if (!action.undo || (action.hasUndo && !action.hasUndo(step.params))) continue;
      const ctx = engine.releaseStepContext(wave, step, new AbortController().signal, log);
      try {
        await action.undo(ctx, step.params, null);
        await deps.journal.append({ type: 'switchover', t: now(), wave, phase: 'undone', step: step.name });
      } catch (err) {
        await deps.journal.append({ type: 'switchover', t: now(), wave, phase: 'undo-failed', step: step.name, error: deps.secrets.mask((err as Error).message) });
        return false;
      }
    }
    await deps.journal.append({ type: 'switchover', t: now(), wave, phase: 'undone' });
    return true;
  } finally {
    log.close();
  }
}
