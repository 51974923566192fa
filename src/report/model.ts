import type { JudgeEvidence } from '../gates/evidence.js';
import type { Actor, JournalRecord } from '../journal/records.js';
import { replay, hostStatus } from '../journal/replay.js';
import { auditTrail } from './audit.js';
import { isLimitedReason } from '../app/limited.js';

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
}

export interface WaveRow {
  wave: number;
  hosts: string[];
  start?: string;
  end?: string;
  status: string;
  events: { t: string; what: string }[];
}

export interface GateRow {
  t: string;
  wave: number;
  check: string;
  host?: string;
  ok: boolean;
  observed: string;
  values?: Record<string, number | string>;
  /** A judge gate's evidence (src/gates/judge.ts). */
  evidence?: JudgeEvidence;
}

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

export interface Report {
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

/** Builds the report of a release from its journal alone (plus the plan's names and the host logs when given). */
export function buildReport(input: ReportInput): Report {
  const { records } = input;
  const state = replay(records);
  const header = state.header;
  const actions = new Map((input.steps ?? []).map((s) => [s.name, s.action]));
  const stepNames = input.steps?.map((s) => s.name);

  // Hosts and their step spans.
  const hosts = new Map<string, HostRow>();
  const open = new Map<string, StepSpan>();
  const drains: DrainWait[] = [];
  const drainOpen = new Map<string, DrainWait>();
  const failures: Failure[] = [];
  const rollbacks: Report['rollbacks'] = [];
  const gates: GateRow[] = [];
  const notifications: NotificationRow[] = [];
  const waveEvents = new Map<number, { t: string; what: string }[]>();
  const waveOf = new Map<string, number>();
  const addWaveEvent = (wave: number, t: string, what: string) => (waveEvents.get(wave) ?? waveEvents.set(wave, []).get(wave)!).push({ t, what });


  for (const r of records) {
    switch (r.type) {
      case 'run':
        // A --limit run that finished its hosts is not a failure: the release is LIMITED (src/app/limited.ts).
        if (r.phase === 'halted' && !isLimitedReason(r.reason)) failures.push({ t: r.t, what: 'release halted', error: r.reason ?? '' });
        if (r.phase === 'rollback') rollbacks.push({ t: r.t, what: 'rollback started' });
        if (r.phase === 'rolled-back') rollbacks.push({ t: r.t, what: 'rolled back', detail: r.reason });
        break;
      case 'wave':
        if (r.phase === 'verify-failed') failures.push({ t: r.t, wave: r.wave, what: `wave ${r.wave} verification`, error: r.detail ?? 'failed' });
        addWaveEvent(r.wave, r.t, r.phase === 'approved' ? `approved by ${r.by ? `${r.by.user}@${r.by.host}` : '?'}` : r.phase + (r.detail ? `: ${r.detail}` : ''));
        break;
      case 'gate':
        gates.push({ t: r.t, wave: r.wave, check: r.check, host: r.host, ok: r.ok, observed: r.observed, values: r.values, ...(r.evidence ? { evidence: r.evidence } : {}) });
        break;
      case 'switchover':
        if (r.phase === 'failed' || r.phase === 'undo-failed') failures.push({ t: r.t, wave: r.wave, what: `switchover${r.step ? ` step ${r.step}` : ''}`, error: r.error ?? r.phase });
        if (r.phase === 'undone' || r.phase === 'undo-failed') rollbacks.push({ t: r.t, what: `switchover ${r.step ?? ''} ${r.phase}`.replace(/\s+/g, ' ') });
        addWaveEvent(r.wave, r.t, `switchover${r.step ? ` ${r.step}` : ''} ${r.phase}`);
        break;
      case 'notify':
        notifications.push({ t: r.t, channel: r.channel, kind: r.kind, ok: r.ok, error: r.error });
        break;
      case 'step': {
        let h = hosts.get(r.host);
        if (!h) {
          h = { host: r.host, wave: r.wave, status: 'pending', spans: [] };
          hosts.set(r.host, h);
        }
        waveOf.set(r.host, r.wave);
        const key = `${r.host}\u0000${r.step}`;
        const undo = r.phase.startsWith('undo') || r.phase === 'undone';
        if (r.phase === 'started' || r.phase === 'undo-started') {
          const span: StepSpan = { step: r.step, kind: undo ? 'undo' : 'do', attempt: r.attempt, start: r.t, result: 'running' };
          h.spans.push(span);
          open.set(key, span);
          if (!undo && isDrainWait(r.step, actions, undefined)) {
            const d: DrainWait = { wave: r.wave, host: r.host, step: r.step, start: r.t, result: 'running', polls: [] };
            drains.push(d);
            drainOpen.set(key, d);
          }
        } else if (r.phase === 'did') {
          /* still running: the check is being polled */
        } else {
          let span = open.get(key);
          if (!span || (undo && span.kind !== 'undo')) {
            // undo-skipped / undone without undo-started: a zero-length mark.
            span = { step: r.step, kind: undo ? 'undo' : 'do', start: r.t, result: r.phase };
            h.spans.push(span);
          }
          span.end = r.t;
          span.result = r.phase;
          if (r.error) span.error = r.error;
          open.delete(key);
          const d = drainOpen.get(key);
          if (d && !undo) {
            d.end = r.t;
            d.result = r.phase;
            d.summary = r.phase === 'failed' ? r.error : summaryOf(r.data);
            drainOpen.delete(key);
          } else if (!d && !undo && r.phase === 'done' && isDrainWait(r.step, actions, r.data) && !actions.size) {
            drains.push({ wave: r.wave, host: r.host, step: r.step, start: span.start, end: r.t, result: 'done', summary: summaryOf(r.data), polls: [] });
          }
          if (r.phase === 'failed') failures.push({ t: r.t, wave: r.wave, host: r.host, what: `${r.host} ${r.step}${r.attempt && r.attempt > 1 ? ` (attempt ${r.attempt})` : ''}`, error: r.error ?? 'failed' });
          if (r.phase === 'undo-failed') failures.push({ t: r.t, wave: r.wave, host: r.host, what: `${r.host} undo ${r.step}`, error: r.error ?? 'failed' });
          if (undo) rollbacks.push({ t: r.t, what: `${r.host} ${r.step} ${r.phase}`, detail: r.error });
        }
        break;
      }
      default:
        break;
    }
  }

  // Polled drain values from the host logs: the n-th attempt of a step in the log matches its n-th span.
  if (input.hostLog) {
    const byHost = new Map<string, DrainWait[]>();
    for (const d of drains) (byHost.get(d.host) ?? byHost.set(d.host, []).get(d.host)!).push(d);
    for (const [host, list] of byHost) {
      const log = input.hostLog(host);
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

  for (const h of hosts.values()) {
    const st = state.hosts.get(h.host);
    h.status = stepNames ? hostStatus(st, stepNames) : (st?.status ?? 'pending');
    h.start = h.spans[0]?.start;
    h.end = h.spans.reduce<string | undefined>((m, s) => (s.end && (!m || s.end > m) ? s.end : m), undefined);
  }

  // Waves: the plan's when given, else the journal's.
  const planWaves = input.waves ?? [...new Set([...hosts.values()].map((h) => h.wave))].sort((a, b) => a - b).map((index) => ({ index, hosts: [...hosts.values()].filter((h) => h.wave === index).map((h) => h.host) }));
  const waves: WaveRow[] = planWaves.map((w) => {
    const rows = w.hosts.map((n) => hosts.get(n)).filter((h): h is HostRow => !!h);
    const ws = state.waves.get(w.index);
    const starts = rows.map((r) => r.start).filter((x): x is string => !!x);
    const ends = rows.map((r) => r.end).filter((x): x is string => !!x);
    const statuses = w.hosts.map((n) => hosts.get(n)?.status ?? 'pending');
    const status = statuses.every((s) => s === 'pending')
      ? 'pending'
      : statuses.some((s) => s === 'failed' || s === 'rollback-failed')
        ? 'failed'
        : statuses.every((s) => s === 'rolled-back' || s === 'pending')
          ? 'rolled-back'
          : statuses.every((s) => s === 'done')
            ? ws?.verifyFailed
              ? 'verify-failed'
              : ws?.verified
                ? 'done'
                : 'verifying'
            : 'running';
    return {
      wave: w.index,
      hosts: w.hosts,
      start: starts.sort()[0],
      end: ends.sort().at(-1),
      status,
      events: waveEvents.get(w.index) ?? [],
    };
  });
  // Hosts in plan order.
  const order = new Map(planWaves.flatMap((w) => w.hosts).map((h, i) => [h, i]));
  const hostRows = [...hosts.values()].sort((a, b) => (order.get(a.host) ?? 1e9) - (order.get(b.host) ?? 1e9) || a.wave - b.wave);
  for (const w of planWaves) for (const n of w.hosts) if (!hosts.has(n)) hostRows.push({ host: n, wave: w.index, status: 'pending', spans: [] });
  hostRows.sort((a, b) => a.wave - b.wave || (order.get(a.host) ?? 0) - (order.get(b.host) ?? 0));

  return {
    release: header?.release ?? '?',
    version: header?.version ?? '?',
    planHash: header?.planHash,
    playbook: header?.playbook,
    status: records.length ? (state.status === 'halted' && isLimitedReason(state.reason) ? 'limited' : state.status) : 'not started',
    reason: state.reason,
    start: header?.t,
    end: records.length ? records[records.length - 1]!.t : undefined,
    waves,
    hosts: hostRows,
    gates,
    drains,
    failures,
    rollbacks,
    actions: auditTrail(records).map((e) => ({ t: e.t, action: e.operator ? e.action : `→ ${e.action}`, by: e.user ? `${e.user}@${e.host}${e.pid !== undefined ? ` (pid ${e.pid})` : ''}` : undefined, reason: e.reason, detail: e.detail })),
    notifications,
  };
}

/** The judge gates of a report (rows with evidence). */
export function judgeRows(gates: GateRow[]): (GateRow & { evidence: JudgeEvidence })[] {
  return gates.filter((g): g is GateRow & { evidence: JudgeEvidence } => !!g.evidence);
}
