import { hostStatus } from '../journal/replay.js';
import type { Host } from '../playbook/types.js';
import { checkpoint, haltIfAborted, haltInterrupted, onGateProblem, type CheckpointScope, type GateProblem } from './checkpoint.js';
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

/** What running the pending hosts of a wave (or of an app's part of a train wave) came to, before its checkpoint. */
export type WaveHostsResult =
  /** Every host is done (or failed within maxFailures); `ran`: some ran in this run. */
  | { kind: 'done'; ran: boolean; failed: string[] }
  /** The operator's abort (`opts.stopped` said so). */
  | { kind: 'stopped'; outcome: Outcome }
  /** A `watch:` check failed while the hosts ran (recorded as the wave's verify-failed). */
  | { kind: 'problem'; problem: GateProblem; failed: string[] }
  /** Ctrl-C / SIGTERM. */
  | { kind: 'interrupted'; failed: string[] }
  /** More hosts failed than maxFailures allows. */
  | { kind: 'failed'; failed: string[] }
  /** Hosts left unstarted (a release train holding new hosts after another app failed). */
  | { kind: 'held'; failed: string[] };

/**
 * The hosts part of a wave, shared by a lock-step wave, a `--limit` cut of one, and an app's part of a train wave:
 * the pending hosts run (at most `concurrency` at once) with the `watch:` checks on them, then what stopped them is
 * told apart. `whole`: these are all the wave's hosts, so the wave's own `started`/`done` are recorded (a cut wave
 * records nothing of the wave's own); `events`: wave.start/wave.done are emitted (a train emits its own);
 * `stopped`: the operator's abort, asked once the hosts have stopped.
 */
export async function runWaveHosts(
  rc: ReleaseContext,
  index: number,
  hostNames: string[],
  opts: { whole: boolean; events: boolean; stopped?: () => Promise<Outcome | undefined> },
): Promise<WaveHostsResult> {
  const { playbook, plan } = rc.deps;
  const isDone = (h: string) => hostStatus(rc.state.hosts.get(h), plan.steps) === 'done';
  const pending = hostNames.filter((h) => !isDone(h));
  const interrupted = () => rc.deps.signal.aborted;
  if (!pending.length) {
    if (opts.whole && hostNames.length && !rc.state.waves.get(index)?.done) await rc.record({ type: 'wave', t: now(), wave: index, phase: 'done' });
    return { kind: 'done', ran: false, failed: [] };
  }
  if (interrupted()) return { kind: 'interrupted', failed: [] };
  const waveStarted = Date.now();
  const waveDone = (failed: string[]) => opts.events && rc.emit({ event: 'wave.done', release: rc.release, wave: index, ms: Date.now() - waveStarted, failed });
  if (opts.whole) await rc.record({ type: 'wave', t: now(), wave: index, phase: 'started' });
  if (opts.events) rc.emit({ event: 'wave.start', release: rc.release, wave: index, hosts: hostNames });
  const watch = startWatch(rc, index, hostNames);
  let failed: string[];
  try {
    failed = await runHosts(rc, index, pending, watch.signal);
  } finally {
    await watch.stop();
  }
  const stopped = await opts.stopped?.();
  if (stopped) return { kind: 'stopped', outcome: stopped };
  const problem = watch.failure();
  if (problem && !interrupted()) {
    waveDone(failed);
    await rc.record({ type: 'wave', t: now(), wave: index, phase: 'verify-failed', detail: problem.detail });
    return { kind: 'problem', problem: { ...problem, wave: index }, failed };
  }
  if (interrupted()) return { kind: 'interrupted', failed };
  if (failed.length > playbook.waves.maxFailures) {
    waveDone(failed);
    return { kind: 'failed', failed };
  }
  if (!pending.every((h) => isDone(h) || failed.includes(h))) return { kind: 'held', failed };
  if (opts.whole) await rc.record({ type: 'wave', t: now(), wave: index, phase: 'done' });
  waveDone(failed);
  return { kind: 'done', ran: true, failed };
}

/** The halt of a wave whose hosts did not get through (the caller's own cases, a gate problem, handled first). */
function haltWave(
  rc: ReleaseContext,
  index: number,
  r: Exclude<WaveHostsResult, { kind: 'done' | 'problem' | 'stopped' }>,
  what = `wave ${index}`,
): Promise<Outcome> {
  if (r.kind === 'interrupted') return haltInterrupted(rc, index);
  if (r.kind === 'held')
    return rc.halt(
      `${what}: ${r.failed.length ? `${r.failed.join(', ')} failed and ` : ''}some hosts did not start`,
      index,
      '`graywave resume` continues from the step where each host stopped',
    );
  const max = rc.deps.playbook.waves.maxFailures;
  const hint = `see the host logs in ${rc.deps.logDir}; then \`graywave resume\` (retries from the failed step) or \`graywave rollback\``;
  return rc.halt(`${what}: ${r.failed.length} host(s) failed (${r.failed.join(', ')}), more than maxFailures ${max}${rc.causes(r.failed)}`, index, hint);
}

/**
 * The `--limit` hosts of a wave that has others too: their pipelines only (with the `watch:` checks). Nothing is
 * recorded as the wave's own (done, verified) and its checks, routing widening, switchover and pause wait until all
 * its hosts have run.
 */
export async function runPartialWave(rc: ReleaseContext, index: number, names: string[]): Promise<Outcome | 'continue'> {
  const aborted = await haltIfAborted(rc, index);
  if (aborted) return aborted;
  const r = await runWaveHosts(rc, index, names, { whole: false, events: true, stopped: () => haltIfAborted(rc, index) });
  if (r.kind === 'done') return 'continue';
  if (r.kind === 'stopped') return r.outcome;
  if (r.kind === 'problem') return onGateProblem(rc, r.problem);
  return haltWave(rc, index, r, `wave ${index} (--limit)`);
}

/**
 * One wave, lock-step: its pending hosts (with the watch checks running), then its checkpoint (`scope` verify: its
 * checks only — a `--limit` run past a wave it cut, src/engine/run.ts).
 */
export async function runWave(rc: ReleaseContext, index: number, hostNames: string[], scope: CheckpointScope = 'all'): Promise<Outcome | 'continue'> {
  const aborted = await haltIfAborted(rc, index);
  if (aborted) return aborted;
  const r = await runWaveHosts(rc, index, hostNames, { whole: true, events: true, stopped: () => haltIfAborted(rc, index) });
  if (r.kind === 'stopped') return r.outcome;
  if (r.kind === 'problem') return onGateProblem(rc, r.problem);
  if (r.kind !== 'done') return haltWave(rc, index, r);
  const c = await checkpoint(rc, index, hostNames, r.ran, scope);
  return typeof c === 'object' ? onGateProblem(rc, c) : c;
}
