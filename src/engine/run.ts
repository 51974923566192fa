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
    await rc.record({ type: 'run', t: now(), phase: resumed ? 'resume' : 'start', by: currentActor(), ...hotfix });
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
        await rc.record({ type: 'run', t: now(), phase: 'halted', reason });
        rc.emit({ event: 'run.halted', release: rc.release, reason, hint: 'graywave resume (without --limit) continues with the rest of the fleet', stillDrained: rc.stillDrained() });
        return 'limited';
      }
      if (failed.length) {
        return await rc.halt(`${failed.length} host(s) did not complete: ${failed.join(', ')}`, undefined, 'fix the cause, then `graywave resume` retries them from the step where each stopped');
      }
      if (!(await routingAt(rc, 'final', plan.waves[plan.waves.length - 1]?.index ?? 0))) return 'halted';
      await rc.record({ type: 'run', t: now(), phase: 'done' });
      rc.emit({ event: 'run.done', release: rc.release, version: playbook.version, hosts: playbook.hosts.length, waves: plan.waves.length, ms: Date.now() - started, failed: [] });
      return 'done';
    } catch (err) {
      // The journal could not be written, or a bug: halt with what we know, if we still can.
      const reason = rc.mask((err as Error).message);
      await rc.deps.journal.append({ type: 'run', t: now(), phase: 'halted', reason }).catch(() => undefined); // the journal itself may be what failed
      rc.emit({ event: 'run.halted', release: rc.release, reason, stillDrained: rc.stillDrained() });
      return 'halted';
    } finally {
      await stopControls();
      await rc.close();
    }
  }

  /** The waves, one after another (lock-step), or as one rolling window with checkpoints. */
  private async waves(rc: ReleaseContext): Promise<Outcome | 'continue'> {
    if (this.deps.playbook.waves.mode === 'rolling') return runRolling(rc);
    for (const wave of this.deps.plan.waves) {
      // --limit: only the chosen hosts run; a wave with some of them runs those (src/plan/limit.ts).
      const limit = this.deps.limit;
      const names = limit ? wave.hosts.filter((h) => limit.has(h)) : wave.hosts;
      if (!names.length) continue;
      const outcome = names.length === wave.hosts.length ? await runWave(rc, wave.index, wave.hosts) : await runPartialWave(rc, wave.index, names);
      if (outcome !== 'continue') return outcome;
    }
    return 'continue';
  }
}
