import { hostStatus, type RunState } from '../journal/replay.js';
import type { Plan } from '../plan/build.js';
import type { Playbook } from '../playbook/types.js';

/**
 * A `--limit` run that finished its chosen hosts is not a halt: the release is LIMITED — those hosts are done,
 * the others pending, and the checks (and switchover, routing widening, pause) of a wave the limit cut through
 * wait for the run that reaches the rest of that wave. The engine journals it as a run record of phase `limited`
 * (replayed as status `limited`, src/journal/replay.ts, which also reads older journals' marker) and emits
 * `run.limited`; `status`, the end-of-run message and the report say what is done and what is left through these
 * functions.
 */

export interface LimitedWave {
  wave: number;
  done: string[];
  pending: string[];
}

export interface LimitedSummary {
  /** Hosts whose pipeline is done. */
  done: string[];
  /** Hosts not done yet (outside the limit). */
  pending: string[];
  /** Waves the limit cut through: some hosts done, the others pending; their checks have not run. */
  partialWaves: LimitedWave[];
  /** The names of the checks (verify:) each of those waves still has to pass (when the playbook is at hand). */
  checks?: string[];
  /** The switchover, when it is still to come. */
  switchoverAfterWave?: number;
  /** True when routing rules still have to be widened / made final. */
  routing?: boolean;
  /** The command that continues the release (the rest of the fleet, then the checks). */
  next: string;
}

/** What a limited release has done and what is left, from the journal (replayed) and the plan. */
export function limitedSummary(plan: Plan, state: RunState, command: string, pb?: Pick<Playbook, 'verify' | 'routing'>): LimitedSummary {
  const statusOf = (h: string) => hostStatus(state.hosts.get(h), plan.steps);
  const done: string[] = [];
  const pending: string[] = [];
  const partialWaves: LimitedWave[] = [];
  for (const w of plan.waves) {
    const d = w.hosts.filter((h) => statusOf(h) === 'done');
    const p = w.hosts.filter((h) => statusOf(h) !== 'done');
    done.push(...d);
    pending.push(...p);
    if (d.length && p.length) partialWaves.push({ wave: w.index, done: d, pending: p });
  }
  return {
    done,
    pending,
    partialWaves,
    ...(pb ? { checks: pb.verify.map((g) => g.name), routing: !!pb.routing?.length } : {}),
    ...(plan.switchoverAfterWave && !state.switchover.done ? { switchoverAfterWave: plan.switchoverAfterWave } : {}),
    next: command,
  };
}

function names(list: string[], max = 10): string {
  return list.length > max ? `${list.slice(0, max).join(', ')}, … (${list.length})` : list.join(', ');
}

/** `graywave resume FILE runs the 1 pending host (app-02), then the checks of wave 2 (--limit covered part of it)`. */
export function limitedNext(s: LimitedSummary): string {
  const n = s.pending.length;
  const waves = s.partialWaves.map((w) => w.wave);
  const then = waves.length ? `, then the checks of wave ${waves.join(', ')} (--limit covered part of ${waves.length > 1 ? 'them' : 'it'})` : '';
  return `${s.next} runs the ${n} pending host${n === 1 ? '' : 's'} (${names(s.pending, 5)})${then}`;
}

/**
 * The lines that tell a person what a limited release is: first `LIMITED: …`, then what waits, then `next:`.
 * `graywave status` prints them under its headline.
 */
export function limitedLines(s: LimitedSummary): string[] {
  const total = s.done.length + s.pending.length;
  const out = [`LIMITED: --limit done on ${s.done.length} of ${total} hosts (${names(s.done)}); ${s.pending.length} pending: ${names(s.pending)}`];
  for (const w of s.partialWaves) {
    const waits = s.checks?.length ? `its checks (${s.checks.join(', ')})` : 'its checks';
    out.push(
      `  wave ${w.wave}: ${w.done.length} of ${w.done.length + w.pending.length} hosts done, ${names(w.pending)} pending; ${waits}${s.routing ? ' and routing widening' : ''} still to run`,
    );
  }
  if (s.switchoverAfterWave !== undefined) out.push(`  switchover after wave ${s.switchoverAfterWave}: not yet`);
  out.push(`  next: ${limitedNext(s)}`);
  return out;
}

/** `graywave resume FILE [--state-dir DIR]`: the command that continues a limited release. */
export function resumeCommand(file: string, stateDir?: string): string {
  return `graywave resume ${file}${stateDir ? ` --state-dir ${stateDir}` : ''}`;
}
