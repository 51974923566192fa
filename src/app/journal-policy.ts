import type { RunStatus } from '../journal/replay.js';

/** What a command does with the journal it found (pure: see decideJournal). */
export type JournalDecision =
  /** Go on with the journal as it is (a new release writes its header into the empty one). */
  | { kind: 'use' }
  /** Put the old journal aside (`journal.<ms>.jsonl`) and start a new one. */
  | { kind: 'archive' }
  /** Use it although it was written for another plan, recording that this was forced. */
  | { kind: 'force' }
  /** Refuse: nothing to resume/roll back, a journal of another plan, or a release still in progress. */
  | { kind: 'refuse'; why: 'no-journal' | 'other-plan' | 'in-progress' };

/** `run` starts a release; `existing` (resume, rollback, approve) needs one. */
export type JournalMode = 'run' | 'existing';

/**
 * The policy for the journal a command finds, from what replay says of it: a journal of another plan is archived by
 * `run` once that release finished (or with --force) and refused otherwise (--force uses it anyway); a release in
 * progress is refused by `run` (--force starts over); a rolled-back one is started over.
 */
export function decideJournal(
  mode: JournalMode,
  state: { header?: { planHash: string }; status: RunStatus },
  planHash: string,
  force: boolean,
): JournalDecision {
  const header = state.header;
  if (!header) return mode === 'existing' ? { kind: 'refuse', why: 'no-journal' } : { kind: 'use' };
  if (header.planHash !== planHash) {
    const finished = state.status === 'done' || state.status === 'rolled-back';
    if (mode === 'run' && (finished || force)) return { kind: 'archive' };
    return force ? { kind: 'force' } : { kind: 'refuse', why: 'other-plan' };
  }
  if (mode === 'existing') return { kind: 'use' };
  if (state.status === 'rolled-back' || (force && state.status !== 'done')) return { kind: 'archive' };
  return state.status === 'done' ? { kind: 'use' } : { kind: 'refuse', why: 'in-progress' };
}
