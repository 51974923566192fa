import { interruption, type LockInfo } from '../journal/lock.js';
import type { JournalRecord } from '../journal/records.js';
import { createBackend } from '../journal/backends.js';
import { hostStatus, replay } from '../journal/replay.js';
import { buildPlan } from '../plan/build.js';
import { loadPlaybook } from '../playbook/load.js';
import { routingState, type RoutingRuleState } from '../routing/run.js';
import { releaseDir } from './paths.js';
import { isLimitedReason, limitedSummary, resumeCommand, type LimitedSummary } from './limited.js';
import { stepProvider } from '../engine/release.js';
import type { JudgeEvidence } from '../gates/evidence.js';

export interface HostReport {
  host: string;
  status: string;
  step?: string;
  stepPhase?: string;
  error?: string;
  startedAt?: string;
  endedAt?: string;
  stillDrained: boolean;
}

/** The newest verdict of each judge gate of a wave, with its evidence (from the journal's gate records). */
export interface JudgeStatus {
  check: string;
  t: string;
  verdict: string;
  evidence: JudgeEvidence;
}

export interface StatusReport {
  release: string;
  version: string;
  status: string;
  reason?: string;
  lockedBy?: string;
  journalVersion?: string;
  startedAt?: string;
  endedAt?: string;
  waves: { index: number; status: string; verified: boolean; approved: boolean; hosts: HostReport[]; judges?: JudgeStatus[] }[];
  stillDrained: string[];
  /** Hosts whose restore step failed: written back, but the system does not read them as serving (or the warm-up stopped). */
  notServing: { host: string; step: string; error: string }[];
  switchover?: { afterWave: number; done: boolean };
  /**
   * Set when status is `limited`: a `--limit` run finished its hosts; the rest of the fleet and the checks of the
   * wave(s) it cut through are still to run (`next` continues).
   */
  limited?: LimitedSummary;
  /** Each routing rule's current state (last point applied, its change, the read-back), from the journal. Absent without rules. */
  routing?: RoutingRuleState[];
}

/** `graywave status`: rebuilt from the journal alone (read-only; takes no lock). */
export async function releaseStatus(file: string, stateDir?: string): Promise<StatusReport> {
  const pb = loadPlaybook(file);
  const plan = buildPlan(pb);
  const dir = releaseDir(pb, stateDir);
  const backend = createBackend(pb, dir);
  let records: JournalRecord[];
  let lock: LockInfo | undefined;
  try {
    records = await backend.readRecords();
    lock = await backend.readLock();
  } finally {
    await backend.close();
  }
  const state = replay(records);
  const stillDrained: string[] = [];
  const notServing: StatusReport['notServing'] = [];
  const waves = plan.waves.map((w) => {
    const ws = state.waves.get(w.index);
    const hosts: HostReport[] = w.hosts.map((name) => {
      const h = state.hosts.get(name);
      const status = hostStatus(h, plan.steps);
      const cur = h?.current ? h.steps.get(h.current) : undefined;
      let drained = false;
      for (const s of pb.steps) {
        if (s.action !== 'drain') continue;
        const d = h?.steps.get(s.name);
        if (!d || !(d.phase === 'done' || d.phase === 'did' || (d.phase === 'failed' && d.hasData) || d.phase === 'undo-failed')) continue;
        const r = pb.steps.find((x) => x.action === 'restore' && stepProvider(x) === stepProvider(s));
        if (!r || h?.steps.get(r.name)?.phase !== 'done') drained = true;
      }
      if (drained) stillDrained.push(name);
      const curStep = pb.steps.find((x) => x.name === h?.current);
      if (curStep?.action === 'restore' && cur?.phase === 'failed') notServing.push({ host: name, step: curStep.name, error: cur.error ?? 'failed' });
      return { host: name, status, step: h?.current, stepPhase: cur?.phase, error: cur?.error, startedAt: h?.startedAt, endedAt: cur?.endedAt, stillDrained: drained };
    });
    const all = hosts.map((h) => h.status);
    const wstatus = all.every((s) => s === 'done') ? (ws?.verified ? 'done' : ws?.verifyFailed ? 'verify-failed' : 'verifying') : all.every((s) => s === 'pending') ? 'pending' : all.some((s) => s === 'failed' || s === 'rollback-failed') ? 'failed' : all.every((s) => s === 'rolled-back' || s === 'pending') ? 'rolled-back' : 'running';
    const judges = new Map<string, JudgeStatus>();
    for (const r of records) if (r.type === 'gate' && r.wave === w.index && r.evidence) judges.set(r.check, { check: r.check, t: r.t, verdict: r.evidence.verdict, evidence: r.evidence });
    return { index: w.index, status: wstatus, verified: !!ws?.verified, approved: !!ws?.approved, hosts, ...(judges.size ? { judges: [...judges.values()] } : {}) };
  });
  const gone = interruption(state.status, lock, file);
  const limited = !gone && state.status === 'halted' && isLimitedReason(state.reason) ? limitedSummary(plan, state, resumeCommand(file, stateDir), pb) : undefined;
  if (limited) for (const w of waves) if (limited.partialWaves.some((p) => p.wave === w.index)) w.status = 'limited';
  return {
    release: pb.name,
    version: pb.version,
    status: records.length ? (gone ? 'interrupted' : limited ? 'limited' : state.status) : 'not started',
    reason: gone ?? state.reason,
    lockedBy: lock ? `pid ${lock.pid} on ${lock.host} (${lock.user}, ${lock.command} since ${lock.startedAt}${lock.reason ? `, reason: ${lock.reason}` : ''})` : undefined,
    journalVersion: state.header?.version,
    startedAt: state.startedAt,
    endedAt: state.endedAt,
    waves,
    stillDrained,
    notServing,
    switchover: plan.switchoverAfterWave ? { afterWave: plan.switchoverAfterWave, done: state.switchover.done } : undefined,
    ...(limited ? { limited } : {}),
    routing: pb.routing?.length || records.some((r) => r.type === 'routing') ? routingState(records, (pb.routing ?? []).map((r) => r.name)) : undefined,
  };
}
