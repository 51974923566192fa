import type { JournalRecord, StepPhase } from './records.js';

export interface StepState {
  phase: StepPhase;
  attempt: number;
  /** Undo data from the latest `did`/`done`. */
  data?: unknown;
  hasData: boolean;
  error?: string;
  startedAt?: string;
  endedAt?: string;
}

export type HostStatus = 'pending' | 'running' | 'done' | 'failed' | 'rolled-back' | 'rollback-failed';

export interface HostState {
  host: string;
  wave: number;
  status: HostStatus;
  /** Step name → state, in the order first seen. */
  steps: Map<string, StepState>;
  /** The step the host is at (last touched). */
  current?: string;
  startedAt?: string;
  endedAt?: string;
}

/** `limited`: a `--limit` run finished its hosts; the rest of the fleet is pending (src/app/limited.ts). */
export type RunStatus = 'new' | 'running' | 'halted' | 'paused' | 'done' | 'rolled-back' | 'frozen' | 'limited';

type RunRecord = Extract<JournalRecord, { type: 'run' }>;

/**
 * A run record's phase, with journals written before the `limited` phase existed read right: there a limited run
 * was recorded as `halted` with a reason starting `--limit:`. The one place that knows that old marker.
 */
export function runPhase(r: RunRecord): RunRecord['phase'] {
  return r.phase === 'halted' && r.reason?.startsWith('--limit:') ? 'limited' : r.phase;
}

export interface WaveState {
  wave: number;
  started: boolean;
  done: boolean;
  verified: boolean;
  verifyFailed?: string;
  paused: boolean;
  approved: boolean;
  approvedBy?: string;
}

export interface RunState {
  header?: Extract<JournalRecord, { type: 'header' }>;
  status: RunStatus;
  reason?: string;
  hosts: Map<string, HostState>;
  waves: Map<number, WaveState>;
  switchover: { started: boolean; done: boolean; undone: boolean; steps: Map<string, 'done' | 'failed' | 'undone' | 'undo-failed'> };
  startedAt?: string;
  endedAt?: string;
  /** The hosts of the `--limit` of the newest run or resume (none: the whole fleet). */
  limit?: string[];
}

function waveState(state: RunState, wave: number): WaveState {
  let w = state.waves.get(wave);
  if (!w) {
    w = { wave, started: false, done: false, verified: false, paused: false, approved: false };
    state.waves.set(wave, w);
  }
  return w;
}

export function emptyState(): RunState {
  return {
    status: 'new',
    hosts: new Map(),
    waves: new Map(),
    switchover: { started: false, done: false, undone: false, steps: new Map() },
  };
}

/** Folds one record into the state (the engine applies each record as it writes it: no replay per step or wave). */
export function applyRecord(state: RunState, r: JournalRecord): void {
  switch (r.type) {
    case 'header':
      state.header = r;
      break;
    case 'run': {
      const phase = runPhase(r);
      if (phase === 'start' || phase === 'resume') {
        state.status = 'running';
        state.startedAt ??= r.t;
      } else if (phase === 'halted') state.status = 'halted';
      else if (phase === 'limited') state.status = 'limited';
      else if (r.phase === 'paused') state.status = 'paused';
      else if (r.phase === 'done') state.status = 'done';
      else if (r.phase === 'rolled-back') state.status = 'rolled-back';
      else if (r.phase === 'frozen') state.status = 'frozen';
      if (r.reason !== undefined) state.reason = r.reason;
      if (r.phase === 'start' || r.phase === 'resume') ((state.reason = undefined), (state.limit = r.limit));
      if (r.phase !== 'start' && r.phase !== 'resume') state.endedAt = r.t;
      break;
    }
    case 'wave': {
      const w = waveState(state, r.wave);
      if (r.phase === 'started') w.started = true;
      else if (r.phase === 'done') w.done = true;
      else if (r.phase === 'verified') ((w.verified = true), (w.verifyFailed = undefined));
      else if (r.phase === 'verify-failed') w.verifyFailed = r.detail ?? 'failed';
      else if (r.phase === 'paused') w.paused = true;
      else if (r.phase === 'approved') ((w.approved = true), (w.approvedBy = r.by ? `${r.by.user}@${r.by.host}` : undefined));
      break;
    }
    case 'step': {
      let h = state.hosts.get(r.host);
      if (!h) {
        h = { host: r.host, wave: r.wave, status: 'pending', steps: new Map() };
        state.hosts.set(r.host, h);
      }
      let s = h.steps.get(r.step);
      if (!s) {
        s = { phase: r.phase, attempt: 0, hasData: false };
        h.steps.set(r.step, s);
      }
      s.phase = r.phase;
      if (r.attempt !== undefined) s.attempt = r.attempt;
      if ((r.phase === 'did' || r.phase === 'done') && 'data' in r) ((s.data = r.data), (s.hasData = true));
      if (r.phase === 'started') ((s.startedAt = r.t), (s.error = undefined), (h.startedAt ??= r.t));
      else s.endedAt = r.t;
      if (r.error !== undefined) s.error = r.error;
      h.current = r.step;
      if (r.phase === 'started' || r.phase === 'did') h.status = 'running';
      else if (r.phase === 'failed') h.status = 'failed';
      else if (r.phase === 'undo-failed') h.status = 'rollback-failed';
      break;
    }
    case 'switchover':
      if (r.phase === 'started') state.switchover.started = true;
      if (r.step && r.phase !== 'started') state.switchover.steps.set(r.step, r.phase as 'done');
      if (r.phase === 'done' && !r.step) state.switchover.done = true;
      if (r.phase === 'undone' && !r.step) ((state.switchover.done = false), (state.switchover.undone = true), (state.switchover.started = false));
      break;
    case 'gate':
      break;
  }
}

/** Folds journal records into the current state. Pure: the same records always give the same state. */
/**
 * The state a journal's records fold into. In a release train's journal the records of an app carry `app` and are
 * that app's (src/journal/journal.ts JournalView): the state of the journal itself is the train's own records.
 */
export function replay(records: readonly JournalRecord[]): RunState {
  const state = emptyState();
  for (const r of records) if ((r as { app?: string }).app === undefined) applyRecord(state, r);
  return state;
}

/** Host status from its steps, given the pipeline's step names (done = every step done). */
/** Whether a step of the host still takes effect (done or begun, not undone or skipped by an undo): what a rollback undoes. */
export function inEffect(h: HostState | undefined): boolean {
  return [...(h?.steps.values() ?? [])].some((s) => s.phase !== 'undone' && s.phase !== 'undo-skipped');
}

export function hostStatus(h: HostState | undefined, stepNames: readonly string[]): HostStatus {
  if (!h) return 'pending';
  const phases = stepNames.map((n) => h.steps.get(n)?.phase);
  if (phases.some((p) => p === 'undo-failed')) return 'rollback-failed';
  if (phases.every((p) => p === 'done')) return 'done';
  if (phases.some((p) => p === 'failed')) return 'failed';
  if (phases.every((p) => p === undefined || p === 'undone' || p === 'undo-skipped') && phases.some((p) => p === 'undone' || p === 'undo-skipped'))
    return 'rolled-back';
  if (phases.every((p) => p === undefined)) return 'pending';
  return 'running';
}
