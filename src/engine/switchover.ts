import { findAction } from '../actions/index.js';
import { now, type ReleaseContext } from './release.js';
import { runReleaseStep } from './step.js';

/** Release-level steps run once, on this machine, when GREEN first carries `switchover.at` of the fleet. */
export async function runSwitchover(rc: ReleaseContext, wave: number): Promise<boolean> {
  const { playbook, plan } = rc.deps;
  const so = playbook.switchover!;
  const t0 = Date.now();
  const greenPercent = Math.round((plan.waves.filter((w) => w.index <= wave).reduce((n, w) => n + w.hosts.length, 0) / playbook.hosts.length) * 100);
  await rc.record({ type: 'switchover', t: now(), wave, phase: 'started' });
  rc.emit({ event: 'switchover.start', release: rc.release, afterWave: wave, greenPercent });
  for (const step of so.steps) {
    if (rc.state.switchover.steps.get(step.name) === 'done') continue;
    try {
      await runReleaseStep(rc, wave, step, 'do');
      await rc.record({ type: 'switchover', t: now(), wave, phase: 'done', step: step.name });
    } catch (err) {
      const msg = rc.mask((err as Error).message);
      await rc.record({ type: 'switchover', t: now(), wave, phase: 'failed', step: step.name, error: msg });
      await rc.halt(`switchover step ${step.name} failed: ${msg}`, wave, 'fix it, then `graywave resume` runs the switchover again');
      return false;
    }
  }
  await rc.record({ type: 'switchover', t: now(), wave, phase: 'done' });
  rc.emit({ event: 'switchover.done', release: rc.release, afterWave: wave, ms: Date.now() - t0 });
  return true;
}

/** Undoes the switchover steps that completed, newest first (rollback). Stops at the first failure: false. */
export async function undoSwitchover(rc: ReleaseContext): Promise<boolean> {
  const so = rc.deps.playbook.switchover;
  if (!so) return true;
  const wave = rc.deps.plan.switchoverAfterWave ?? 0;
  try {
    for (const step of [...so.steps].reverse()) {
      if (rc.state.switchover.steps.get(step.name) !== 'done') continue;
      const action = findAction(step.action)!;
      if (!action.undo || (action.hasUndo && !action.hasUndo(step.params))) continue;
      const at = { wave, host: '_switchover', step: step.name };
      const t0 = Date.now();
      rc.emit({ event: 'undo.start', release: rc.release, ...at });
      try {
        await runReleaseStep(rc, wave, step, 'undo');
        await rc.record({ type: 'switchover', t: now(), wave, phase: 'undone', step: step.name });
        rc.emit({ event: 'undo.done', release: rc.release, ...at, ms: Date.now() - t0 });
      } catch (err) {
        const error = rc.mask((err as Error).message);
        await rc.record({ type: 'switchover', t: now(), wave, phase: 'undo-failed', step: step.name, error });
        rc.emit({ event: 'undo.failed', release: rc.release, ...at, error });
        return false;
      }
    }
    await rc.record({ type: 'switchover', t: now(), wave, phase: 'undone' });
    return true;
  } finally {
    rc.closeLog('_switchover');
  }
}
