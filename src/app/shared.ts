import type { Outcome } from '../engine/run.js';
import type { Journal } from '../journal/journal.js';
import { currentActor } from '../journal/lock.js';
import type { RunState } from '../journal/replay.js';
import type { Plan } from '../plan/build.js';
import type { Playbook } from '../playbook/types.js';
import { EXIT, GraywaveError } from '../errors.js';
import { confirm, isTerminal } from './deps.js';
import type { ReleaseRequest } from './open.js';
import { releaseStatus } from './status.js';

/** What run, resume, rollback and approve share, for a playbook and a release train (src/app/run.ts, src/app/train.ts). */

export const exitFor: Record<Outcome, number> = { done: EXIT.ok, halted: EXIT.halted, paused: EXIT.paused, 'rolled-back': EXIT.ok, limited: EXIT.ok };

export async function confirmed(req: ReleaseRequest, question: string): Promise<boolean> {
  if (req.yes || !isTerminal()) return true;
  return confirm(question);
}

/** Whether the journal of this release (same version) says done: read without taking the lock. */
export async function releaseDone(req: ReleaseRequest, pb: Playbook): Promise<boolean> {
  try {
    const st = await releaseStatus(req.file, req.stateDir);
    return st.status === 'done' && !st.lockedBy && (st.journalVersion ?? st.version) === pb.version; // a held lock is reported by open() (exit 3)
  } catch {
    return false; // no journal yet (or unreadable: open() reports that)
  }
}

/**
 * Records a person's go for the wave that waits (or the newest finished wave): only a wave with another one after
 * it can wait for approval (or any wave a marginal judge paused); a finished release has nothing to approve.
 */
export async function recordApproval(journal: Journal, plan: Plan, state: RunState, reason: string | undefined): Promise<number> {
  const lastWave = plan.waves[plan.waves.length - 1]?.index ?? 0;
  const finished = state.status === 'done' || state.status === 'rolled-back';
  const open = finished ? [] : [...state.waves.values()].filter((w) => w.done && !w.approved && (w.wave < lastWave || (w.paused && !w.verified)));
  // The wave the release paused at first (a --limit run may have finished a later wave, whose approval waits its
  // turn); else the newest finished wave.
  const waiting = open.filter((w) => w.paused).sort((a, b) => a.wave - b.wave)[0] ?? open.sort((a, b) => b.wave - a.wave)[0];
  if (!waiting)
    throw new GraywaveError(`no finished wave of ${plan.release} waits for approval${finished ? ` (the release is ${state.status})` : ''}`, EXIT.usage);
  await journal.append({ type: 'wave', t: new Date().toISOString(), wave: waiting.wave, phase: 'approved', by: currentActor() });
  await journal.append({
    type: 'operator',
    t: new Date().toISOString(),
    action: 'approve',
    by: currentActor(),
    reason,
    detail: waiting.wave < lastWave ? `wave ${waiting.wave + 1} may start` : `wave ${waiting.wave} may finish the release`,
  });
  return waiting.wave;
}

/** Records who rolled back, why and which waves (`fast`, `all` or the current wave), before the undo starts. */
export async function recordRollback(journal: Journal, req: { reason?: string; fast?: boolean }, all: boolean | undefined, waves: number[]): Promise<void> {
  await journal.append({
    type: 'operator',
    t: new Date().toISOString(),
    action: 'rollback',
    by: currentActor(),
    reason: req.reason,
    detail: `${req.fast ? 'fast' : all ? 'all' : 'current wave'}: wave(s) ${waves.join(', ')}`,
  });
}
