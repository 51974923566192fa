import { hostStatus } from '../journal/replay.js';
import type { Host } from '../playbook/types.js';
import { checkpoint, haltIfAborted, haltInterrupted, onGateProblem, type CheckpointScope } from './checkpoint.js';
import { startWatch } from './gates.js';
import { now, type Outcome, type ReleaseContext } from './release.js';
import { runStep } from './step.js';

/**
 * One host's pipeline from the step where it stopped; false when a step failed. An operator abort stops the host
 * at its next step boundary (it stays where it is); `signal` is the wave's.
 */
export async function runHost(rc: ReleaseContext, wave: number, host: Host, signal: AbortSignal): Promise<boolean> {
  const started = Date.now();
  rc.emit({ event: 'host.start', release: rc.release, wave, host: host.name });
  const hostState = () => rc.state.hosts.get(host.name);
  try {
    for (const step of rc.deps.playbook.steps) {
      const prior = hostState()?.steps.get(step.name);
      if (prior?.phase === 'done') continue;
      if (rc.controls.stop) return true;
      const ok = await runStep(rc, wave, host, step, prior?.hasData ? prior.data : undefined, signal);
      if (!ok) {
        const err = hostState()?.steps.get(step.name)?.error ?? 'failed';
        rc.emit({ event: 'host.failed', release: rc.release, wave, host: host.name, step: step.name, error: err });
        return false;
      }
    }
    rc.emit({ event: 'host.done', release: rc.release, wave, host: host.name, ms: Date.now() - started });
    return true;
  } finally {
    await rc.deps.transport.release(host).catch(() => undefined);
    rc.closeLog(host.name);
  }
}

/** Runs the wave's hosts, at most `concurrency` at once; stops starting new hosts once failures exceed maxFailures. */
export async function runHosts(rc: ReleaseContext, wave: number, names: string[], signal: AbortSignal): Promise<string[]> {
  const { concurrency, maxFailures } = rc.deps.playbook.waves;
  const failed: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < names.length && failed.length <= maxFailures && !signal.aborted && !rc.controls.stop && !rc.holdNewHosts) {
      const name = names[next++]!;
      if (!(await runHost(rc, wave, rc.host(name), signal))) failed.push(name);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker));
  return failed;
}

/**
 * The `--limit` hosts of a wave that has others too: their pipelines only. Nothing is recorded as the wave's own
 * (done, verified) and its checks, routing widening, switchover and pause wait until all its hosts have run.
 */
export async function runPartialWave(rc: ReleaseContext, index: number, names: string[]): Promise<Outcome | 'continue'> {
  const { playbook, plan } = rc.deps;
  const pending = names.filter((h) => hostStatus(rc.state.hosts.get(h), plan.steps) !== 'done');
  const aborted = await haltIfAborted(rc, index);
  if (aborted) return aborted;
  if (!pending.length) return 'continue';
  if (rc.deps.signal.aborted) return haltInterrupted(rc, index);
  const waveStarted = Date.now();
  rc.emit({ event: 'wave.start', release: rc.release, wave: index, hosts: names });
  const failed = await runHosts(rc, index, pending, rc.deps.signal);
  const stopped = await haltIfAborted(rc, index);
  if (stopped) return stopped;
  if (rc.deps.signal.aborted) return haltInterrupted(rc, index);
  rc.emit({ event: 'wave.done', release: rc.release, wave: index, ms: Date.now() - waveStarted, failed });
  if (failed.length > playbook.waves.maxFailures) return rc.halt(`wave ${index} (--limit): ${failed.length} host(s) failed (${failed.join(', ')})${rc.causes(failed)}`, index, 'see .graywave logs; then `graywave resume` or `graywave rollback`');
  return 'continue';
}

/**
 * One wave, lock-step: its pending hosts (with the watch checks running), then its checkpoint (`scope` verify: its
 * checks only — a `--limit` run past a wave it cut, src/engine/run.ts).
 */
export async function runWave(rc: ReleaseContext, index: number, hostNames: string[], scope: CheckpointScope = 'all'): Promise<Outcome | 'continue'> {
  const { playbook, plan } = rc.deps;
  const interrupted = () => rc.deps.signal.aborted;
  const pending = hostNames.filter((h) => hostStatus(rc.state.hosts.get(h), plan.steps) !== 'done');
  const waveStarted = Date.now();
  const waveDone = (failed: string[]) => rc.emit({ event: 'wave.done', release: rc.release, wave: index, ms: Date.now() - waveStarted, failed });
  const aborted = await haltIfAborted(rc, index);
  if (aborted) return aborted;
  if (pending.length) {
    if (interrupted()) return haltInterrupted(rc, index);
    await rc.record({ type: 'wave', t: now(), wave: index, phase: 'started' });
    rc.emit({ event: 'wave.start', release: rc.release, wave: index, hosts: hostNames });
    const watch = startWatch(rc, index, hostNames);
    let failed: string[];
    try {
      failed = await runHosts(rc, index, pending, watch.signal);
    } finally {
      await watch.stop();
    }
    const stopped = await haltIfAborted(rc, index);
    if (stopped) return stopped;
    const problem = watch.failure();
    if (problem && !interrupted()) {
      waveDone(failed);
      await rc.record({ type: 'wave', t: now(), wave: index, phase: 'verify-failed', detail: problem.detail });
      return onGateProblem(rc, { ...problem, wave: index });
    }
    if (interrupted()) return haltInterrupted(rc, index);
    if (failed.length > playbook.waves.maxFailures) {
      waveDone(failed);
      const max = playbook.waves.maxFailures;
      const hint = `see the host logs in ${rc.deps.logDir}; then \`graywave resume\` (retries from the failed step) or \`graywave rollback\``;
      return rc.halt(`wave ${index}: ${failed.length} host(s) failed (${failed.join(', ')}), more than maxFailures ${max}${rc.causes(failed)}`, index, hint);
    }
    await rc.record({ type: 'wave', t: now(), wave: index, phase: 'done' });
    waveDone(failed);
  } else if (!rc.state.waves.get(index)?.done && hostNames.length) {
    await rc.record({ type: 'wave', t: now(), wave: index, phase: 'done' });
  }
  const r = await checkpoint(rc, index, hostNames, pending.length > 0, scope);
  return typeof r === 'object' ? onGateProblem(rc, r) : r;
}
