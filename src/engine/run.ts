import { currentActor } from '../journal/lock.js';
import { hostStatus } from '../journal/replay.js';
import { routingAt } from './checkpoint.js';
import { watchOnce } from './gates.js';
import type { EngineDeps } from './context.js';
import { now, ReleaseContext, type Outcome } from './release.js';
import { runRolling } from './rolling.js';
import { runPartialWave, runWave } from './waves.js';

export type { Outcome } from './release.js';
export { stepProvider } from './release.js';
export { abortable } from './step.js';

/**
 * Runs (or resumes) a release: routing rules published, the waves (lock-step or rolling), the final routing point,
 * done. Every transition is journalled (fsync) before the event that reports it. The parts, bottom up:
 * release.ts (state, journal, contexts) → step.ts (the one step runner) → gates.ts / switchover.ts / rollback.ts →
 * checkpoint.ts → waves.ts / rolling.ts → this file.
 */
export class Engine {
  constructor(private readonly deps: EngineDeps) {}

  async run(resumed: boolean): Promise<Outcome> {
    const rc = new ReleaseContext(this.deps);
    rc.watchOnce = (wave, host) => watchOnce(rc, wave, host);
    const { plan, playbook } = this.deps;
    const started = Date.now();
    const hotfix = playbook.hotfix ? { hotfix: true, reason: playbook.hotfix.reason } : {};
    const limited = this.deps.limit ? { limit: [...this.deps.limit] } : {};
    await rc.record({ type: 'run', t: now(), phase: resumed ? 'resume' : 'start', by: currentActor(), ...hotfix, ...limited });
    rc.emit({ event: 'run.start', release: rc.release, version: playbook.version, hosts: playbook.hosts.length, waves: plan.waves.length, resumed });
    const stopControls = rc.controls.watch(this.deps.controls);
    try {
      // Routing rules (src/routing): published before wave 1; a failure halts before any host is touched.
      if (!(await routingAt(rc, 'publish', 0))) return 'halted';
      const outcome = await this.waves(rc);
      if (outcome !== 'continue') return outcome;
      const notDone = playbook.hosts.filter((h) => hostStatus(rc.state.hosts.get(h.name), plan.steps) !== 'done').map((h) => h.name);
      const limit = this.deps.limit;
      const failed = limit ? notDone.filter((h) => limit.has(h)) : notDone;
      if (!failed.length && notDone.length && limit) {
        const reason = `--limit: ${limit.size} host(s) done; ${notDone.length} host(s) outside the limit still pending: ${notDone.slice(0, 10).join(', ')}${notDone.length > 10 ? ', …' : ''}`;
        await rc.record({ type: 'run', t: now(), phase: 'limited', reason });
        const done = playbook.hosts.length - notDone.length;
        rc.emit({
          event: 'run.limited',
          release: rc.release,
          reason,
          done,
          pending: notDone.length,
          hint: 'graywave resume (without --limit) continues with the rest of the fleet',
        });
        return 'limited';
      }
      if (failed.length) {
        return await rc.halt(
          `${failed.length} host(s) did not complete: ${failed.join(', ')}`,
          undefined,
          'fix the cause, then `graywave resume` retries them from the step where each stopped',
        );
      }
      // Every host is done: no wave may end the release without its checkpoint (one completed piecemeal by --limit
      // runs gets it here, in order, if the waves above did not run it).
      for (const w of plan.waves) {
        if (rc.state.waves.get(w.index)?.verified) continue;
        const o = await runWave(rc, w.index, w.hosts);
        if (o !== 'continue') return o;
      }
      if (!(await routingAt(rc, 'final', plan.waves[plan.waves.length - 1]?.index ?? 0))) return 'halted';
      return await rc.done(plan.waves.length, started);
    } catch (err) {
      return await rc.haltOnError(err);
    } finally {
      await stopControls();
      await rc.close();
    }
  }

  /**
   * The waves, one after another (lock-step), or as one rolling window with checkpoints. With `--limit` a rolling
   * release runs lock-step too: the window would start hosts outside the limit.
   *
   * `--limit` (src/plan/limit.ts): a wave whose hosts outside the limit are all done is whole once this run is
   * through — it takes the full path (its pending hosts, then its checkpoint: checks, routing widening, the
   * switchover, approval or pause), also when no host of it is in the limit (its checkpoint may never have run, or
   * waits for an approval). A wave with hosts outside the limit still pending is cut: only its limit hosts run,
   * nothing is recorded as the wave's own. Checkpoints keep their order: after a cut wave, a later whole wave runs
   * its checks but its routing widening, switchover and approval wait until the cut wave's checkpoint has run.
   */
  private async waves(rc: ReleaseContext): Promise<Outcome | 'continue'> {
    const { playbook, plan, limit } = this.deps;
    if (playbook.waves.mode === 'rolling' && !limit) return runRolling(rc);
    const isDone = (h: string) => hostStatus(rc.state.hosts.get(h), plan.steps) === 'done';
    let cut = false;
    for (const wave of plan.waves) {
      const outsidePending = limit ? wave.hosts.filter((h) => !limit.has(h) && !isDone(h)) : [];
      let outcome: Outcome | 'continue';
      if (!outsidePending.length) outcome = await runWave(rc, wave.index, wave.hosts, cut ? 'verify' : 'all');
      else {
        cut = true;
        const names = wave.hosts.filter((h) => limit!.has(h));
        if (!names.length) continue;
        outcome = await runPartialWave(rc, wave.index, names);
      }
      if (outcome !== 'continue') return outcome;
    }
    return 'continue';
  }
}
