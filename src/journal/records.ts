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
  | { type: 'run'; t: string; phase: 'start' | 'resume' | 'halted' | 'paused' | 'done' | 'rollback' | 'rolled-back' | 'forced'; reason?: string; by?: Actor }
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
  | { type: 'gate'; t: string; wave: number; check: string; host?: string; ok: boolean; observed: string; values?: Record<string, number | string> }
  | { type: 'switchover'; t: string; wave: number; phase: 'started' | 'done' | 'failed' | 'undone' | 'undo-failed'; step?: string; error?: string }
  /** A webhook notification was attempted for the transition `key` (src/notify): never sent twice, even on resume. */
  | { type: 'notify'; t: string; key: string; channel: string; kind: string; ok: boolean; error?: string };

export type StepPhase = 'started' | 'did' | 'done' | 'failed' | 'undo-started' | 'undone' | 'undo-failed' | 'undo-skipped';

export interface Actor {
  user: string;
  host: string;
  pid: number;
}
