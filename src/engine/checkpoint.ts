import { currentActor } from '../journal/lock.js';
import { pauseAfter } from '../plan/pause.js';
import { formatMs } from '../util/duration.js';
import { sleep } from './context.js';
import { verifyWave } from './gates.js';
import { now, type Outcome, type ReleaseContext } from './release.js';
import { rollbackHosts } from './rollback.js';
import { runSwitchover } from './switchover.js';
import { withLimits } from './step.js';

/** A gate that did not pass: `failed` applies onFailure; `error` (it could not be measured) halts, undoing nothing. */
export interface GateProblem {
  kind: 'failed' | 'error';
  wave: number;
  detail: string;
}

/** Halts when an operator asked to (`graywave abort`); read at every step and gate boundary. */
export async function haltIfAborted(rc: ReleaseContext, wave?: number): Promise<Outcome | undefined> {
  if (!rc.controls.stop) return undefined;
  return rc.halt(rc.controls.stop, wave, '`graywave resume` continues from the step where each host stopped; `graywave rollback` undoes');
}

/** Why the release was stopped by a signal: "interrupted (Ctrl-C)" or "terminated (SIGTERM)" (the signal's reason). */
function interruptReason(rc: ReleaseContext): string {
  const r = rc.deps.signal.reason;
  return r instanceof Error && r.message ? r.message : 'interrupted (Ctrl-C)';
}

export function haltInterrupted(rc: ReleaseContext, wave?: number): Promise<Outcome> {
  return rc.halt(interruptReason(rc), wave, 'graywave resume continues where it stopped');
}

/** Brings the routing rules to their state at this point (no-op without `routing:`); false after halting. */
export async function routingAt(rc: ReleaseContext, phase: 'publish' | 'widen' | 'final', wave: number): Promise<boolean> {
  if (!rc.deps.playbook.routing?.length) return true;
  try {
    await withLimits(() => rc.routing().at(phase, wave), { signal: rc.deps.signal });
    return true;
  } catch (err) {
    await rc.halt(
      (err as Error).message,
      wave || undefined,
      'fix it, then `graywave resume` applies and checks the rule again (or `graywave rollback --all` undoes it)',
    );
    return false;
  }
}

/** How much of a checkpoint runs: all of it, or (`verify`) the checks only, the rest waiting for a later run. */
export type CheckpointScope = 'all' | 'verify';

/**
 * What happens once a wave's hosts are done: verification gates, routing widening, the switchover, then an
 * approval or a pause before the next wave. A gate that does not pass is returned (the caller decides when to
 * handle it: a rolling release first lets its in-flight hosts finish). `ranHosts`: hosts of the wave ran in this
 * run — checks that passed before they ran (a host retried after a tolerated failure, or run again after a
 * rollback) did not judge them, so the checks run again.
 */
export async function checkpoint(
  rc: ReleaseContext,
  index: number,
  hostNames: string[],
  ranHosts: boolean,
  scope: CheckpointScope = 'all',
): Promise<Outcome | 'continue' | GateProblem> {
  const { playbook, plan } = rc.deps;
  const verified = () => !!rc.state.waves.get(index)?.verified;
  let stale = ranHosts && verified();
  while (stale || !verified()) {
    const v = await verifyWave(rc, index, hostNames);
    if (v === 'aborted') return (await haltIfAborted(rc, index))!;
    if (v.kind === 'interrupted') return rc.halt(v.reason, index, 'graywave resume continues where it stopped (the checks run again)');
    if (v.kind === 'ask') {
      // A marginal or inconclusive judge: a person decides with the evidence; once approved, the checks run again
      // and the approval lets such a verdict through.
      const o = await askApproval(rc, index, v.detail, v.evidence);
      if (o !== 'continue') return o;
      continue;
    }
    if (v.kind !== 'ok') return { kind: v.kind, wave: index, detail: v.detail };
    await rc.record({ type: 'wave', t: now(), wave: index, phase: 'verified' });
    stale = false;
  }
  if (scope === 'verify') return 'continue';

  // Routing rules widen once the wave is verified: GREEN gets the traffic chosen for it after this wave.
  if (!(await routingAt(rc, 'widen', index))) return 'halted';

  if (plan.switchoverAfterWave === index && !rc.state.switchover.done) {
    if (!(await runSwitchover(rc, index))) return 'halted';
  }

  const isLast = index === plan.waves[plan.waves.length - 1]!.index;
  if (isLast || rc.controls.promoteFull) return 'continue'; // promoted: no approval, no pause
  const pause = pauseAfter(playbook.waves, index);
  const needsApproval = pause.kind === 'approve' || playbook.verify.some((g) => g.gate === 'approve');
  if (needsApproval && !rc.state.waves.get(index)?.approved) return askApproval(rc, index);
  if (pause.kind === 'duration' && ranHosts) {
    const until = new Date(Date.now() + pause.ms).toISOString();
    rc.emit({ event: 'wave.paused', release: rc.release, wave: index, until, reason: `pause ${formatMs(pause.ms)}` });
    try {
      await sleep(pause.ms, rc.deps.signal);
    } catch {
      return rc.halt(`${interruptReason(rc)} during the pause`, index, 'graywave resume continues where it stopped');
    }
  }
  return 'continue';
}

/** Asks a person to approve the wave: before the next wave, or (`evidence`) on a marginal or inconclusive judge. */
async function askApproval(rc: ReleaseContext, wave: number, evidence?: string, lines: string[] = []): Promise<Outcome | 'continue'> {
  const isLast = wave === rc.deps.plan.waves[rc.deps.plan.waves.length - 1]?.index;
  const shown = lines.map((l) => `\n  ${rc.mask(l)}`).join('');
  const question = evidence
    ? `wave ${wave}: ${rc.mask(evidence)}${shown}\nApprove and ${isLast ? 'finish the release' : `continue with wave ${wave + 1}`}?`
    : `wave ${wave} is done and verified. Continue with wave ${wave + 1}?`;
  if (rc.deps.approve) {
    rc.emit({ event: 'wave.paused', release: rc.release, wave, reason: evidence ? rc.mask(evidence) : 'waiting for approval' });
    const yes = await rc.deps.approve(question);
    if (!yes)
      return rc.halt(
        evidence ? `wave ${wave} not approved: ${evidence}` : `wave ${wave + 1} not approved`,
        wave,
        'graywave approve, then graywave resume — or graywave rollback',
      );
    const by = currentActor();
    await rc.record({ type: 'wave', t: now(), wave, phase: 'approved', by });
    rc.emit({ event: 'wave.approved', release: rc.release, wave, by: `${by.user}@${by.host}` });
    return 'continue';
  }
  const how = evidence
    ? '; approve with `graywave approve` (or `graywave promote`), then `graywave resume`; or `graywave rollback`'
    : '; approve with `graywave approve`, then `graywave resume`';
  await rc.record({ type: 'wave', t: now(), wave, phase: 'paused', detail: evidence ? rc.mask(evidence) : 'waiting for approval' });
  await rc.record({ type: 'run', t: now(), phase: 'paused', reason: rc.mask(`wave ${wave} waits for approval${evidence ? `: ${evidence}` : ''}`) });
  rc.emit({ event: 'run.paused', release: rc.release, wave, reason: rc.mask(evidence ? `wave ${wave}: ${evidence}${how}` : `wave ${wave} is done${how}`) });
  return 'paused';
}

/**
 * A gate that did not pass. One that could not be measured halts and undoes nothing (it says nothing about the
 * release); one that failed applies the playbook's onFailure: freeze, halt, or roll back this wave / every wave.
 */
export async function onGateProblem(rc: ReleaseContext, p: GateProblem): Promise<Outcome> {
  const { wave, detail } = p;
  if (p.kind === 'error') {
    return rc.halt(
      `verification could not be measured after wave ${wave}: ${detail}`,
      wave,
      'nothing was rolled back (a gate that errors is not a failed gate); fix the measurement, then `graywave resume` re-runs the checks',
    );
  }
  const policy = rc.deps.playbook.onFailure;
  if (policy === 'freeze') {
    const reason = rc.mask(`FROZEN after wave ${wave}: ${detail} — everything is kept exactly as it is`);
    await rc.record({ type: 'run', t: now(), phase: 'frozen', reason });
    rc.emit({
      event: 'run.halted',
      release: rc.release,
      reason,
      wave,
      hint: 'nothing was rolled back (onFailure: freeze); investigate, then `graywave resume`, or `graywave rollback --force`',
      stillDrained: rc.stillDrained(),
    });
    return 'halted';
  }
  if (policy === 'halt') {
    return rc.halt(
      `verification failed after wave ${wave}: ${detail}`,
      wave,
      'investigate, then `graywave resume` (re-runs the checks) or `graywave rollback`',
    );
  }
  const waves = policy === 'rollback-wave' ? [wave] : rc.deps.plan.waves.filter((w) => w.index <= wave).map((w) => w.index);
  const ok = await rollbackHosts(rc, { waves, undoSwitchover: policy === 'rollback-all' });
  await rc.record({
    type: 'run',
    t: now(),
    phase: 'halted',
    reason: `verification failed after wave ${wave}: ${detail}; ${policy} ${ok ? 'done' : 'incomplete'}`,
  });
  rc.emit({
    event: 'run.halted',
    release: rc.release,
    wave,
    reason: rc.mask(`verification failed after wave ${wave}: ${detail}; hosts rolled back (${policy})${ok ? '' : ' — some undo steps failed'}`),
    hint: 'fix the release, then run it again',
    stillDrained: rc.stillDrained(),
  });
  return 'halted';
}
