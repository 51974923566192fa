import { relative } from 'node:path';
import type { EngineEvent } from '../engine/events.js';
import { hostStatus, type RunState } from '../journal/replay.js';
import type { Plan } from '../plan/build.js';
import { limitedNext, limitedSummary, resumeCommand } from '../app/limited.js';

/**
 * Hints name the exact next command: the engine says `graywave resume`; the operator reads
 * `graywave resume order.yaml --state-dir /var/gw` (the playbook as it was given, and the state dir if one was).
 */
export function withFile(text: string, file: string, stateDir?: string): string {
  const state = stateDir ? ` --state-dir ${stateDir}` : '';
  return text.replace(
    /(`?)graywave (resume|rollback|approve|status|unlock)((?: --[a-z-]+)*)\1/g,
    (_m, q: string, cmd: string, flags: string) => `${q}graywave ${cmd} ${file}${flags}${state}${q}`,
  );
}

/** Waves before `wave` whose hosts are all done (GREEN): a plain `rollback` leaves them as they are. */
export function greenWavesBefore(plan: Plan, state: RunState, wave: number): number[] {
  return plan.waves.filter((w) => w.index < wave && w.hosts.every((h) => hostStatus(state.hosts.get(h), plan.steps) === 'done')).map((w) => w.index);
}

/** `1`, `1–3`, `1, 3`. */
export function waveList(waves: number[]): string {
  if (waves.length > 2 && waves.every((w, i) => i === 0 || w === waves[i - 1]! + 1)) return `${waves[0]}–${waves[waves.length - 1]}`;
  return waves.join(', ');
}

/** What the hints need: the playbook as given, the state dir, the plan and the journal's state now. */
export interface HintContext {
  file: string;
  stateDir?: string;
  plan: Plan;
  state: () => RunState;
}

/** An event as the operator should read it: a halt's and a limited run's hints name the exact next command. */
export function withHints(e: EngineEvent, ctx: HintContext): EngineEvent {
  if (e.event === 'run.halted') return haltHints(e, ctx);
  // A --limit run that finished its hosts: the hint says what the next run does (src/app/limited.ts).
  if (e.event === 'run.limited')
    return { ...e, hint: limitedNext(limitedSummary(ctx.plan, ctx.state(), resumeCommand(relative(process.cwd(), ctx.file) || ctx.file, ctx.stateDir))) };
  return e;
}

/**
 * The halt event as the operator should read it: commands with the playbook's path, and, when earlier waves are
 * already GREEN, that `rollback` alone undoes only the current wave while `rollback FILE --all` undoes them too.
 */
export function haltHints(e: Extract<EngineEvent, { event: 'run.halted' }>, ctx: HintContext): Extract<EngineEvent, { event: 'run.halted' }> {
  const file = relative(process.cwd(), ctx.file) || ctx.file;
  if (!e.hint) return e;
  let hint = withFile(e.hint, file, ctx.stateDir);
  if (e.wave !== undefined && /graywave rollback /.test(hint) && !/--all/.test(hint)) {
    const green = greenWavesBefore(ctx.plan, ctx.state(), e.wave);
    if (green.length) {
      const state = ctx.stateDir ? ` --state-dir ${ctx.stateDir}` : '';
      hint += `; \`graywave rollback ${file}${state}\` undoes wave ${e.wave} only — wave${green.length > 1 ? 's' : ''} ${waveList(green)} ${green.length > 1 ? 'are' : 'is'} GREEN: \`graywave rollback ${file} --all${state}\` undoes every wave`;
    }
  }
  return { ...e, hint };
}
