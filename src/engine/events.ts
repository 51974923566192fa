import type { JudgeEvidence, Verdict } from '../gates/evidence.js';

/** A check's result (verify.done, verify.failed); `verdict`/`evidence`: a judging gate's verdict and its evidence (src/gates/judge.ts); verify.failed with verdict marginal/inconclusive pauses for approval. */
export interface VerifyResult {
  release: string;
  wave: number;
  check: string;
  host?: string;
  observed: string;
  ms: number;
  verdict?: Verdict;
  evidence?: JudgeEvidence;
}

/**
 * What the engine tells the world. Renderers (listr2, plain lines, JSON lines) and tests subscribe to these;
 * the engine itself never prints. Every event is emitted after the matching journal record is on disk.
 * The JSON renderer prints each as one line: {"event": <type>, ...fields}.
 */
export type EngineEvent =
  | { event: 'run.start'; release: string; version: string; hosts: number; waves: number; resumed: boolean }
  | { event: 'wave.start'; release: string; wave: number; hosts: string[] }
  /** A release train: the app's part of this wave waits for the apps in its `after:` (they are not done with theirs yet). */
  | { event: 'app.waiting'; release: string; wave: number; app: string; after: string[] }
  | { event: 'host.start'; release: string; wave: number; host: string }
  | { event: 'step.start'; release: string; wave: number; host: string; step: string; attempt: number }
  | { event: 'step.progress'; release: string; wave: number; host: string; step: string; observed: string }
  | { event: 'step.done'; release: string; wave: number; host: string; step: string; ms: number; skipped?: boolean }
  | { event: 'step.retry'; release: string; wave: number; host: string; step: string; attempt: number; error: string }
  | { event: 'step.failed'; release: string; wave: number; host: string; step: string; ms: number; error: string; output?: string[] }
  | { event: 'host.done'; release: string; wave: number; host: string; ms: number }
  | { event: 'host.failed'; release: string; wave: number; host: string; step: string; error: string }
  | { event: 'verify.start'; release: string; wave: number; check: string; host?: string }
  | ({ event: 'verify.done' } & VerifyResult)
  | ({ event: 'verify.failed' } & VerifyResult)
  | { event: 'wave.done'; release: string; wave: number; ms: number; failed: string[] }
  | { event: 'wave.paused'; release: string; wave: number; until?: string; reason: string }
  | { event: 'wave.approved'; release: string; wave: number; by: string }
  | { event: 'switchover.start'; release: string; afterWave: number; greenPercent: number }
  | { event: 'switchover.done'; release: string; afterWave: number; ms: number }
  /**
   * A routing rule (src/routing) reached its state at a point and was read back: before wave 1 (`publish`, wave 0),
   * after a verified wave (`widen`), at the end (`final`). `detail`: what changed (the change summary) or that
   * nothing had to; `observed`: the read-back.
   */
  | {
      event: 'routing.applied';
      release: string;
      rule: string;
      wave: number;
      phase: 'publish' | 'widen' | 'final';
      detail: string;
      changed: boolean;
      observed: string;
    }
  /** A rule could not be brought to (or confirmed at) its point, or (phase `undo`) one of its changes not undone. */
  | { event: 'routing.failed'; release: string; rule: string; wave: number; phase: 'publish' | 'widen' | 'final' | 'undo'; error: string }
  /** One change of a rule was undone (rollback, or `end: remove`). */
  | { event: 'routing.undone'; release: string; rule: string; wave: number; detail: string }
  | { event: 'rollback.start'; release: string; waves: number[]; hosts: string[] }
  /** An undo step starts (host `_switchover`: a switchover step is taken back). */
  | { event: 'undo.start'; release: string; wave: number; host: string; step: string }
  | { event: 'undo.done'; release: string; wave: number; host: string; step: string; ms: number }
  | { event: 'undo.skipped'; release: string; wave: number; host: string; step: string; reason: string }
  | { event: 'undo.failed'; release: string; wave: number; host: string; step: string; error: string }
  /** A host's rollback is over (ok: every step that took effect was undone or had no undo). */
  | { event: 'host.undone'; release: string; wave: number; host: string; ok: boolean; ms: number }
  | { event: 'rollback.done'; release: string; hosts: string[]; failed: string[]; ms: number }
  | { event: 'run.halted'; release: string; reason: string; wave?: number; hint?: string; stillDrained?: string[] }
  | { event: 'run.paused'; release: string; wave: number; reason: string }
  /**
   * A `--limit` run finished its hosts and the rest of the fleet is pending (not a halt: nothing failed). `done`
   * and `pending`: hosts of the release; `reason` names the first pending ones.
   */
  | { event: 'run.limited'; release: string; reason: string; done: number; pending: number; hint?: string }
  | { event: 'run.done'; release: string; version: string; hosts: number; waves: number; ms: number; failed: string[] };

export type EventName = EngineEvent['event'];
export type EventSink = (event: EngineEvent) => void;
