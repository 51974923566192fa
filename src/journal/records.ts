import type { JudgeEvidence, Verdict } from '../gates/evidence.js';

/** One line of the journal. The journal is the truth: status, resume and rollback are rebuilt from these alone. */
export type JournalRecord =
  | {
      type: 'header';
      v: 1;
      release: string;
      version: string;
      planHash: string;
      playbook: string;
      t: string;
      by: Actor;
    }
  /**
   * `limited`: a `--limit` run finished its hosts and the rest of the fleet is pending (journals written before this
   * phase existed say `halted` with a reason starting `--limit:`: replay.ts runPhase reads both as limited).
   * `limit` (start/resume): the hosts of that run's `--limit`.
   */
  | {
      type: 'run';
      t: string;
      phase: 'start' | 'resume' | 'halted' | 'paused' | 'done' | 'rollback' | 'rolled-back' | 'forced' | 'frozen' | 'limited';
      reason?: string;
      by?: Actor;
      hotfix?: boolean;
      limit?: string[];
    }
  | {
      type: 'step';
      t: string;
      wave: number;
      host: string;
      step: string;
      phase: StepPhase;
      attempt?: number;
      /** What undo needs (from do). */
      data?: unknown;
      error?: string;
      ms?: number;
    }
  | { type: 'wave'; t: string; wave: number; phase: 'started' | 'done' | 'verified' | 'verify-failed' | 'paused' | 'approved'; detail?: string; by?: Actor }
  | {
      type: 'gate';
      t: string;
      wave: number;
      check: string;
      host?: string;
      ok: boolean;
      observed: string;
      values?: Record<string, number | string>;
      verdict?: Verdict;
      evidence?: JudgeEvidence;
    }
  | { type: 'switchover'; t: string; wave: number; phase: 'started' | 'done' | 'failed' | 'undone' | 'undo-failed'; step?: string; error?: string }
  /** A webhook notification was attempted for the transition `key` (src/notify): never sent twice, even on resume. */
  | { type: 'notify'; t: string; key: string; channel: string; kind: string; ok: boolean; error?: string }
  /**
   * A release-level routing rule (src/routing/run.ts). publish/widen/final: one change, `seq` numbers it and `data` is
   * what undo needs; verified/failed: the read-back of a point (data.of names the phase); undone/undo-failed: `seq`.
   */
  | {
      type: 'routing';
      t: string;
      rule: string;
      phase: 'publish' | 'widen' | 'final' | 'verified' | 'failed' | 'undone' | 'undo-failed';
      wave: number;
      seq?: number;
      data?: unknown;
      error?: string;
    }
  /** An operator's action (run, resume, promote, abort, rollback, approve, unlock) with who, when and why: the audit trail. */
  | { type: 'operator'; t: string; action: OperatorAction; by: Actor; reason?: string; detail?: string; id?: string };

export type StepPhase = 'started' | 'did' | 'done' | 'failed' | 'undo-started' | 'undone' | 'undo-failed' | 'undo-skipped';

export interface Actor {
  user: string;
  host: string;
  pid: number;
}

export type OperatorAction = 'run' | 'resume' | 'promote' | 'abort' | 'rollback' | 'approve' | 'unlock' | 'freeze';

/** A request from another process (or machine) to the engine that holds the lock: picked up within seconds. */
export interface ControlRequest {
  id: string;
  action: 'abort' | 'promote';
  /** promote: pass the current gate (`gate`) or every remaining one (`full`). */
  mode?: 'gate' | 'full';
  reason?: string;
  by: Actor;
  t: string;
}
