import type { JudgeEvidence } from '../gates/evidence.js';
import type { Actor, JournalRecord } from '../journal/records.js';
import { replay, hostStatus, runPhase, type RunState } from '../journal/replay.js';
import { auditTrail } from './audit.js';
import { waveStatus } from '../app/status.js';

/** One attempt (or undo) of one step on one host, with its times. */
export interface StepSpan {
  step: string;
  kind: 'do' | 'undo';
  attempt?: number;
  start: string;
  end?: string;
  /** done, failed, running (no end recorded: the process stopped), undone, undo-failed, undo-skipped. */
  result: string;
  error?: string;
}

export interface HostRow {
  host: string;
  wave: number;
  status: string;
  start?: string;
  end?: string;
  spans: StepSpan[];
  /** A release train: the app of the host (the host is named `app/host`). */
  app?: string;
  /** The host's log file, when there is one, and its last lines. */
  log?: string;
  logTail?: string[];
}

export interface WaveRow {
  wave: number;
  hosts: string[];
  start?: string;
  end?: string;
  status: string;
  events: { t: string; what: string }[];
}

/** A gate's result as the journal recorded it (a judge gate's with its verdict and evidence, src/gates/judge.ts). */
export type GateRow = Omit<Extract<JournalRecord, { type: 'gate' }>, 'type'>;

export interface DrainWait {
  wave: number;
  host: string;
  step: string;
  start: string;
  end?: string;
  result: string;
  /** What the step recorded when it finished (e.g. waitDrained: value, polls, ms). */
  summary?: string;
  /** Each poll's reading, from the host's log (`waitDrained … poll N: …` / `check: …` lines). */
  polls: { t: string; text: string }[];
}

export interface Failure {
  t: string;
  wave?: number;
  host?: string;
  what: string;
  error: string;
}

export interface OperatorAction {
  t: string;
  action: string;
  by?: string;
  reason?: string;
  detail?: string;
}

export interface NotificationRow {
  t: string;
  channel: string;
  kind: string;
  ok: boolean;
  error?: string;
}

/** One app of a release train: its part of the train, per train wave. */
export interface AppRow {
  name: string;
  after: string[];
  deploy: boolean;
  version?: string;
  status: string;
  hosts: number;
  done: number;
  /** Where its hosts' logs are. */
  logDir?: string;
  waves: { wave: number; status: string; hosts: string[]; start?: string; end?: string }[];
}

export interface Report {
  /** Set for a release train: its apps in start order (hosts, gates and failures name `app/host`, `app/check`). */
  train?: { apps: AppRow[] };
  release: string;
  version: string;
  planHash?: string;
  playbook?: string;
  status: string;
  reason?: string;
  start?: string;
  end?: string;
  waves: WaveRow[];
  hosts: HostRow[];
  gates: GateRow[];
  drains: DrainWait[];
  failures: Failure[];
  rollbacks: { t: string; what: string; detail?: string }[];
  actions: OperatorAction[];
  notifications: NotificationRow[];
}

export interface ReportInput {
  records: readonly JournalRecord[];
  /** Waves of the plan (index → hosts), when the playbook is at hand; else taken from the journal. */
  waves?: { index: number; hosts: string[] }[];
  /** Step names of the pipeline in order, and their actions (to find the drain waits). */
  steps?: { name: string; action: string }[];
  /** Reads a host's log (`logs/<host>.log`), if any: the polled drain values come from it. */
  hostLog?: (host: string) => string | undefined;
  /** The path of a host's log (shown in the report). */
  logPath?: (host: string) => string | undefined;
  /** A release train: each app's part (src/report/train.ts); the fields above are then the train's own. */
  apps?: AppInput[];
}

/** One app of a release train as the report reads it: its plan's waves and steps and its hosts' logs. */
export interface AppInput {
  name: string;
  after?: string[];
  deploy?: boolean;
  version?: string;
  waves?: { index: number; hosts: string[] }[];
  steps?: { name: string; action: string }[];
  hostLog?: (host: string) => string | undefined;
  logPath?: (host: string) => string | undefined;
  logDir?: string;
}

export const actorText = (a: Actor | undefined): string | undefined => (a ? `${a.user}@${a.host} (pid ${a.pid})` : undefined);

const isDrainWait = (step: string, actions: Map<string, string>, data: unknown): boolean => {
  const action = actions.get(step);
  if (action) return action === 'waitDrained';
  return step.startsWith('waitDrained') || (typeof data === 'object' && data !== null && 'polls' in data);
};

/** Parses a host log into the poll lines of each attempt of each step (between `--- STEP (attempt N) ---` markers). */
export function pollsFromLog(log: string): Map<string, { t: string; text: string }[][]> {
  const out = new Map<string, { t: string; text: string }[][]>();
  let current: { t: string; text: string }[] | undefined;
  for (const line of log.split('\n')) {
    const m = /^(\d{4}-\d\d-\d\dT[\d:.]+Z) (.*)$/.exec(line);
    if (!m) continue;
    const [, t, text] = m as unknown as [string, string, string];
    const start = /^--- (\S+) \(attempt \d+\) ---$/.exec(text);
    if (start) {
      const list = out.get(start[1]!) ?? [];
      current = [];
      list.push(current);
      out.set(start[1]!, list);
      continue;
    }
    if (/^--- \S+ (done|failed)/.test(text)) {
      current = undefined;
      continue;
    }
    if (!current) continue;
    const poll = /^waitDrained \S+ poll \d+: (.*)$/.exec(text) ?? /^check: (.*)$/.exec(text);
    if (poll) current.push({ t: t!, text: poll[1]! });
  }
  return out;
}

function summaryOf(data: unknown): string | undefined {
  if (data === null || data === undefined) return undefined;
  if (typeof data !== 'object') return String(data);
  const d = data as Record<string, unknown>;
  if ('polls' in d && 'value' in d) return `last value ${String(d.value)} after ${String(d.polls)} poll(s)`;
  return JSON.stringify(data).slice(0, 200);
}

/** What one pass over the journal collects (everything but the wave rows, which need the plan's waves). */
interface Collected {
  hosts: Map<string, HostRow>;
  drains: DrainWait[];
  failures: Failure[];
  rollbacks: Report['rollbacks'];
  gates: GateRow[];
  notifications: NotificationRow[];
  waveEvents: Map<number, { t: string; what: string }[]>;
}

type StepRecord = Extract<JournalRecord, { type: 'step' }>;

/** Folds the journal's records, one at a time, into the report's lists. */
class Collector implements Collected {
  readonly hosts = new Map<string, HostRow>();
  readonly drains: DrainWait[] = [];
  readonly failures: Failure[] = [];
  readonly rollbacks: Report['rollbacks'] = [];
  readonly gates: GateRow[] = [];
  readonly notifications: NotificationRow[] = [];
  readonly waveEvents = new Map<number, { t: string; what: string }[]>();
  /** The span (and drain wait) in flight per host and step. */
  private readonly open = new Map<string, StepSpan>();
  private readonly drainOpen = new Map<string, DrainWait>();

  constructor(private readonly actions: Map<string, string>) {}

  private addWaveEvent(wave: number, t: string, what: string): void {
    (this.waveEvents.get(wave) ?? this.waveEvents.set(wave, []).get(wave)!).push({ t, what });
  }

  add(r: JournalRecord): void {
    switch (r.type) {
      case 'run':
        // A --limit run that finished its hosts is not a failure: the release is LIMITED (src/app/limited.ts).
        if (runPhase(r) === 'halted') this.failures.push({ t: r.t, what: 'release halted', error: r.reason ?? '' });
        if (r.phase === 'rollback') this.rollbacks.push({ t: r.t, what: 'rollback started' });
        if (r.phase === 'rolled-back') this.rollbacks.push({ t: r.t, what: 'rolled back', detail: r.reason });
        break;
      case 'wave':
        if (r.phase === 'verify-failed') this.failures.push({ t: r.t, wave: r.wave, what: `wave ${r.wave} verification`, error: r.detail ?? 'failed' });
        this.addWaveEvent(
          r.wave,
          r.t,
          r.phase === 'approved' ? `approved by ${r.by ? `${r.by.user}@${r.by.host}` : '?'}` : r.phase + (r.detail ? `: ${r.detail}` : ''),
        );
        break;
      case 'gate':
        this.gates.push({
          t: r.t,
          wave: r.wave,
          check: r.check,
          host: r.host,
          ok: r.ok,
          observed: r.observed,
          values: r.values,
          ...(r.evidence ? { evidence: r.evidence } : {}),
        });
        break;
      case 'switchover':
        if (r.phase === 'failed' || r.phase === 'undo-failed')
          this.failures.push({ t: r.t, wave: r.wave, what: `switchover${r.step ? ` step ${r.step}` : ''}`, error: r.error ?? r.phase });
        if (r.phase === 'undone' || r.phase === 'undo-failed')
          this.rollbacks.push({ t: r.t, what: `switchover ${r.step ?? ''} ${r.phase}`.replace(/\s+/g, ' ') });
        this.addWaveEvent(r.wave, r.t, `switchover${r.step ? ` ${r.step}` : ''} ${r.phase}`);
        break;
      case 'notify':
        this.notifications.push({ t: r.t, channel: r.channel, kind: r.kind, ok: r.ok, error: r.error });
        break;
      case 'step':
        this.step(r);
        break;
      default:
        break;
    }
  }

  private step(r: StepRecord): void {
    let h = this.hosts.get(r.host);
    if (!h) {
      h = { host: r.host, wave: r.wave, status: 'pending', spans: [] };
      this.hosts.set(r.host, h);
    }
    const key = `${r.host}\u0000${r.step}`;
    const undo = r.phase.startsWith('undo') || r.phase === 'undone';
    if (r.phase === 'started' || r.phase === 'undo-started') {
      const span: StepSpan = { step: r.step, kind: undo ? 'undo' : 'do', attempt: r.attempt, start: r.t, result: 'running' };
      h.spans.push(span);
      this.open.set(key, span);
      if (!undo && isDrainWait(r.step, this.actions, undefined)) {
        const d: DrainWait = { wave: r.wave, host: r.host, step: r.step, start: r.t, result: 'running', polls: [] };
        this.drains.push(d);
        this.drainOpen.set(key, d);
      }
    } else if (r.phase !== 'did') {
      // ('did': still running, the check is being polled.)
      this.stepEnded(r, h, key, undo);
    }
  }

  private stepEnded(r: StepRecord, h: HostRow, key: string, undo: boolean): void {
    let span = this.open.get(key);
    if (!span || (undo && span.kind !== 'undo')) {
      // undo-skipped / undone without undo-started: a zero-length mark.
      span = { step: r.step, kind: undo ? 'undo' : 'do', start: r.t, result: r.phase };
      h.spans.push(span);
    }
    span.end = r.t;
    span.result = r.phase;
    if (r.error) span.error = r.error;
    this.open.delete(key);
    const d = this.drainOpen.get(key);
    if (d && !undo) {
      d.end = r.t;
      d.result = r.phase;
      d.summary = r.phase === 'failed' ? r.error : summaryOf(r.data);
      this.drainOpen.delete(key);
    } else if (!d && !undo && r.phase === 'done' && isDrainWait(r.step, this.actions, r.data) && !this.actions.size) {
      this.drains.push({ wave: r.wave, host: r.host, step: r.step, start: span.start, end: r.t, result: 'done', summary: summaryOf(r.data), polls: [] });
    }
    if (r.phase === 'failed')
      this.failures.push({
        t: r.t,
        wave: r.wave,
        host: r.host,
        what: `${r.host} ${r.step}${r.attempt && r.attempt > 1 ? ` (attempt ${r.attempt})` : ''}`,
        error: r.error ?? 'failed',
      });
    if (r.phase === 'undo-failed') this.failures.push({ t: r.t, wave: r.wave, host: r.host, what: `${r.host} undo ${r.step}`, error: r.error ?? 'failed' });
    if (undo) this.rollbacks.push({ t: r.t, what: `${r.host} ${r.step} ${r.phase}`, detail: r.error });
  }
}

/** Polled drain values from the host logs: the n-th attempt of a step in the log matches its n-th span. */
function attachPolls(drains: DrainWait[], hostLog: (host: string) => string | undefined): void {
  const byHost = new Map<string, DrainWait[]>();
  for (const d of drains) (byHost.get(d.host) ?? byHost.set(d.host, []).get(d.host)!).push(d);
  for (const [host, list] of byHost) {
    const log = hostLog(host);
    if (!log) continue;
    const polls = pollsFromLog(log);
    const seen = new Map<string, number>();
    for (const d of list) {
      const i = seen.get(d.step) ?? 0;
      seen.set(d.step, i + 1);
      d.polls = polls.get(d.step)?.[i] ?? [];
    }
  }
}

type PlanWave = { index: number; hosts: string[] };

function waveRows(planWaves: PlanWave[], c: Collected, state: RunState): WaveRow[] {
  return planWaves.map((w) => {
    const rows = w.hosts.map((n) => c.hosts.get(n)).filter((h): h is HostRow => !!h);
    const starts = rows.map((r) => r.start).filter((x): x is string => !!x);
    const ends = rows.map((r) => r.end).filter((x): x is string => !!x);
    const status = waveStatus(
      w.hosts.map((n) => c.hosts.get(n)?.status ?? 'pending'),
      state.waves.get(w.index),
    );
    return { wave: w.index, hosts: w.hosts, start: starts.sort()[0], end: ends.sort().at(-1), status, events: c.waveEvents.get(w.index) ?? [] };
  });
}

/** Every host of the plan (the ones the journal never mentions as pending), by wave, in plan order. */
function hostRowsInPlanOrder(planWaves: PlanWave[], hosts: Map<string, HostRow>): HostRow[] {
  const order = new Map(planWaves.flatMap((w) => w.hosts).map((h, i) => [h, i]));
  const rows = [...hosts.values()].sort((a, b) => (order.get(a.host) ?? 1e9) - (order.get(b.host) ?? 1e9) || a.wave - b.wave);
  for (const w of planWaves) for (const n of w.hosts) if (!hosts.has(n)) rows.push({ host: n, wave: w.index, status: 'pending', spans: [] });
  return rows.sort((a, b) => a.wave - b.wave || (order.get(a.host) ?? 0) - (order.get(b.host) ?? 0));
}

/** The last lines of each host's log the report carries (the whole log is at `log`). */
const LOG_TAIL = 12;

/** Builds the report of a release from its journal alone (plus the plan's names and the host logs when given). */
export function buildReport(input: ReportInput): Report {
  const { records } = input;
  const state = replay(records);
  const header = state.header;
  const stepNames = input.steps?.map((s) => s.name);
  const c = new Collector(new Map((input.steps ?? []).map((s) => [s.name, s.action])));
  for (const r of records) c.add(r);
  if (input.hostLog) attachPolls(c.drains, input.hostLog);

  for (const h of c.hosts.values()) {
    const st = state.hosts.get(h.host);
    h.status = stepNames ? hostStatus(st, stepNames) : (st?.status ?? 'pending');
    h.start = h.spans[0]?.start;
    h.end = h.spans.reduce<string | undefined>((m, s) => (s.end && (!m || s.end > m) ? s.end : m), undefined);
    const log = input.logPath?.(h.host);
    if (log) {
      h.log = log;
      h.logTail = input.hostLog?.(h.host)?.trimEnd().split('\n').slice(-LOG_TAIL);
    }
  }

  // Waves: the plan's when given, else the journal's.
  const journalled = [...c.hosts.values()];
  const planWaves =
    input.waves ??
    [...new Set(journalled.map((h) => h.wave))]
      .sort((a, b) => a - b)
      .map((index) => ({ index, hosts: journalled.filter((h) => h.wave === index).map((h) => h.host) }));

  return {
    release: header?.release ?? '?',
    version: header?.version ?? '?',
    planHash: header?.planHash,
    playbook: header?.playbook,
    status: records.length ? state.status : 'not started',
    reason: state.reason,
    start: header?.t,
    end: records.length ? records[records.length - 1]!.t : undefined,
    waves: waveRows(planWaves, c, state),
    hosts: hostRowsInPlanOrder(planWaves, c.hosts),
    gates: c.gates,
    drains: c.drains,
    failures: c.failures,
    rollbacks: c.rollbacks,
    actions: auditTrail(records).map((e) => ({
      t: e.t,
      action: e.operator ? e.action : `→ ${e.action}`,
      by: e.user ? `${e.user}@${e.host}${e.pid !== undefined ? ` (pid ${e.pid})` : ''}` : undefined,
      reason: e.reason,
      detail: e.detail,
    })),
    notifications: c.notifications,
  };
}

/** The judge gates of a report (rows with evidence). */
export function judgeRows(gates: GateRow[]): (GateRow & { evidence: JudgeEvidence })[] {
  return gates.filter((g): g is GateRow & { evidence: JudgeEvidence } => !!g.evidence);
}
