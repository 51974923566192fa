import { interruption, type LockInfo } from '../journal/lock.js';
import type { JournalRecord } from '../journal/records.js';
import { createBackend } from '../journal/backends.js';
import { hostStatus, replay } from '../journal/replay.js';
import { partOf } from '../journal/journal.js';
import { buildPlan, type Plan } from '../plan/build.js';
import type { Playbook } from '../playbook/types.js';
import { buildTrainPlan, trainHost, type TrainPlan } from '../plan/train.js';
import { openReleaseFile } from '../playbook/release-file.js';
import { routingState, type RoutingRuleState } from '../routing/run.js';
import { releaseDir } from './paths.js';
import { limitedSummary, resumeCommand, type LimitedSummary } from './limited.js';
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
   * A release that waits for a person: what `graywave approve` would approve — a playbook's or the train's own
   * wave, or an app's check that paused a train (a marginal or inconclusive judge), with why.
   */
  pending?: PendingApproval[];
  /** A release train: each app, its hosts done and the status of its part of each wave (src/app/train.ts). */
  apps?: { name: string; after: string[]; deploy: boolean; hosts: number; done: number; status: string; waves: { index: number; status: string }[] }[];
  /**
   * Set when status is `limited`: a `--limit` run finished its hosts; the rest of the fleet and the checks of the
   * wave(s) it cut through are still to run (`next` continues).
   */
  limited?: LimitedSummary;
  /** Each routing rule's current state (last point applied, its change, the read-back), from the journal. Absent without rules. */
  routing?: RoutingRuleState[];
}

/** A wave waiting for a person's approval: the train's own (no `app`) or an app's whose check paused the train. */
export interface PendingApproval {
  wave: number;
  app?: string;
  /** Why it waits: the paused check's verdict, or `waiting for approval` (a pause: approve). */
  detail: string;
}

/**
 * The waves of one journal (a playbook's, or one part of a train's) paused for approval and not approved yet (an
 * app's check that passed after all, e.g. promoted, no longer waits).
 */
function pausedWaves(records: JournalRecord[], app?: string): PendingApproval[] {
  const state = replay(records);
  const paused = [...state.waves.values()].filter((w) => w.paused && !w.approved && !(app && w.verified));
  return paused.map((w) => {
    const rec = [...records].reverse().find((r) => r.type === 'wave' && r.wave === w.wave && r.phase === 'paused') as { detail?: string } | undefined;
    return { wave: w.wave, ...(app ? { app } : {}), detail: rec?.detail ?? 'waiting for approval' };
  });
}

/**
 * What a paused release train waits for: each app's check that paused it (approved per app), else the train's own
 * wave. Nothing once the train is done or rolled back.
 */
export function pendingApprovals(records: JournalRecord[], apps: string[]): PendingApproval[] {
  const own = partOf(records, undefined);
  const status = replay(own).status;
  if (status === 'done' || status === 'rolled-back') return [];
  const ofApps = apps.flatMap((a) => pausedWaves(partOf(records, a), a));
  return ofApps.length ? ofApps : status === 'paused' ? pausedWaves(own) : [];
}

/** A wave's status from its hosts' statuses and the wave's own state (checks passed or failed). */
export function waveStatus(all: string[], ws: { verified?: boolean; verifyFailed?: string } | undefined): string {
  if (all.every((s) => s === 'done')) return ws?.verified ? 'done' : ws?.verifyFailed ? 'verify-failed' : 'verifying';
  if (all.every((s) => s === 'pending')) return 'pending';
  if (all.some((s) => s === 'failed' || s === 'rollback-failed')) return 'failed';
  return all.every((s) => s === 'rolled-back' || s === 'pending') ? 'rolled-back' : 'running';
}

/**
 * A release whose process died during a `--limit` run: the plain `resume` the interruption names would go on with
 * the whole fleet; say how to go on with the same hosts.
 */
function interruptedLimited(gone: string | undefined, limit: string[] | undefined, file: string, stateDir?: string): string | undefined {
  if (!gone || !limit?.length) return gone;
  const hosts = limit.length > 20 ? `${limit.slice(0, 20).join(',')},…` : limit.join(',');
  return `${gone} — it ran with --limit (${limit.length} host(s)): \`${resumeCommand(file, stateDir)} --limit ${hosts}\` goes on with those hosts only; a resume without --limit goes on with the whole fleet`;
}

/** `graywave status`: rebuilt from the journal alone (read-only; takes no lock). A train file: src/app/train.ts. */
export async function releaseStatus(file: string, stateDir?: string): Promise<StatusReport> {
  const rf = openReleaseFile(file);
  if (rf.kind === 'train') return trainStatus(file, stateDir, buildTrainPlan(rf.load()));
  const pb = rf.load();
  return playbookStatus(pb, buildPlan(pb), file, stateDir);
}

/** `status` of a playbook already loaded, with its plan. */
export async function playbookStatus(pb: Playbook, plan: Plan, file: string, stateDir?: string): Promise<StatusReport> {
  const { records, lock } = await readJournalOf(pb, stateDir);
  return statusOf(pb, plan, records, lock, file, stateDir);
}

/** The journal and the lock of a release, read without taking the lock. */
export async function readJournalOf(pb: Playbook, stateDir?: string): Promise<{ records: JournalRecord[]; lock?: LockInfo }> {
  const backend = createBackend(pb, releaseDir(pb, stateDir));
  try {
    return { records: await backend.readRecords(), lock: await backend.readLock() };
  } finally {
    await backend.close();
  }
}

/** A release's status from its playbook, plan and journal records (pure but for the lock's liveness check). */
export function statusOf(pb: Playbook, plan: Plan, records: JournalRecord[], lock: LockInfo | undefined, file: string, stateDir?: string): StatusReport {
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
      return {
        host: name,
        status,
        step: h?.current,
        stepPhase: cur?.phase,
        error: cur?.error,
        startedAt: h?.startedAt,
        endedAt: cur?.endedAt,
        stillDrained: drained,
      };
    });
    const wstatus = waveStatus(
      hosts.map((h) => h.status),
      ws,
    );
    const judges = new Map<string, JudgeStatus>();
    for (const r of records)
      if (r.type === 'gate' && r.wave === w.index && r.evidence)
        judges.set(r.check, { check: r.check, t: r.t, verdict: r.evidence.verdict, evidence: r.evidence });
    return {
      index: w.index,
      status: wstatus,
      // A rollback takes a verified wave's hosts back to the old release: its checks no longer hold (the engine checks
      // the wave again when its hosts run again).
      verified: !!ws?.verified && !hosts.some((h) => h.status === 'rolled-back' || h.status === 'rollback-failed'),
      approved: !!ws?.approved,
      hosts,
      ...(judges.size ? { judges: [...judges.values()] } : {}),
    };
  });
  const gone = interruptedLimited(interruption(state.status, lock, file), state.limit, file, stateDir);
  const limited = !gone && state.status === 'limited' ? limitedSummary(plan, state, resumeCommand(file, stateDir), pb) : undefined;
  const pending = !gone && state.status === 'paused' ? pausedWaves(records) : [];
  if (limited) for (const w of waves) if (limited.partialWaves.some((p) => p.wave === w.index)) w.status = 'limited';
  return {
    release: pb.name,
    version: pb.version,
    status: records.length ? (gone ? 'interrupted' : state.status) : 'not started',
    reason: gone ?? state.reason,
    lockedBy: lock
      ? `pid ${lock.pid} on ${lock.host} (${lock.user}, ${lock.command} since ${lock.startedAt}${lock.reason ? `, reason: ${lock.reason}` : ''})`
      : undefined,
    journalVersion: state.header?.version,
    startedAt: state.startedAt,
    endedAt: state.endedAt,
    waves,
    stillDrained,
    notServing,
    switchover: plan.switchoverAfterWave ? { afterWave: plan.switchoverAfterWave, done: state.switchover.done } : undefined,
    ...(limited ? { limited } : {}),
    ...(pending.length ? { pending } : {}),
    routing:
      pb.routing?.length || records.some((r) => r.type === 'routing')
        ? routingState(
            records,
            (pb.routing ?? []).map((r) => r.name),
          )
        : undefined,
  };
}

/**
 * `status` of a train: the train's waves with every app's hosts (`app/host`), the train's own state (checks,
 * approvals, switchover), and per app its hosts done and the status of its part of each wave.
 */
export async function trainStatus(file: string, stateDir: string | undefined, tp: TrainPlan): Promise<StatusReport> {
  const { records, lock: held } = await readJournalOf(tp.playbook, stateDir);
  const own = partOf(records, undefined);
  const top = statusOf(tp.playbook, tp.plan, own, held, file, stateDir);
  const apps = tp.apps.map((a) => {
    const mine = partOf(records, a.name);
    const report = statusOf(a.playbook, a.plan, mine, undefined, file);
    // Every host of the app is in one of its waves: its status is already in the report.
    const statuses = report.waves.flatMap((w) => w.hosts.map((h) => h.status));
    return { a, report, statuses };
  });
  const trainWaves = replay(own).waves;
  const waves = top.waves.map((w) => {
    const hosts = apps.flatMap(({ a, report }) =>
      (report.waves.find((x) => x.index === w.index)?.hosts ?? []).map((h) => ({ ...h, host: trainHost(a.name, h.host) })),
    );
    const judges = apps.flatMap(({ a, report }) =>
      (report.waves.find((x) => x.index === w.index)?.judges ?? []).map((j) => ({ ...j, check: `${a.name}/${j.check}` })),
    );
    const ws = trainWaves.get(w.index);
    return {
      ...w,
      status: waveStatus(
        hosts.map((h) => h.status),
        ws,
      ),
      hosts,
      ...(judges.length || w.judges ? { judges: [...(w.judges ?? []), ...judges] } : {}),
    };
  });
  const pending = pendingApprovals(
    records,
    tp.apps.map((a) => a.name),
  );
  return {
    ...top,
    waves,
    ...(pending.length ? { pending } : {}),
    stillDrained: apps.flatMap(({ a, report }) => report.stillDrained.map((h) => trainHost(a.name, h))),
    notServing: apps.flatMap(({ a, report }) => report.notServing.map((n) => ({ ...n, host: trainHost(a.name, n.host) }))),
    apps: apps.map(({ a, report, statuses }) => ({
      name: a.name,
      after: a.after,
      deploy: a.deploy,
      hosts: statuses.length,
      done: statuses.filter((s) => s === 'done').length,
      status: waveStatus(statuses, { verified: true }),
      waves: report.waves.map((w) => ({ index: w.index, status: w.status })),
    })),
  };
}
