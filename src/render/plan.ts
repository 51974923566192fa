import chalk from 'chalk';
import { evidenceLines } from '../gates/judge.js';
import { describeStep, describeUndo, type Plan } from '../plan/build.js';
import type { Playbook } from '../playbook/types.js';
import { findAction } from '../actions/index.js';
import type { StatusReport } from '../app/status.js';
import type { RoutingRuleState } from '../routing/run.js';
import { routingPoint } from './lines.js';

/** The dry run as JSON: pinned fields first, details after. */
export function planJson(pb: Playbook, plan: Plan) {
  return {
    release: plan.release,
    version: plan.version,
    group: plan.group,
    planHash: plan.planHash,
    waves: plan.waves.map((w) => ({ index: w.index, hosts: w.hosts })),
    steps: plan.steps,
    switchover: plan.switchoverAfterWave ? { afterWave: plan.switchoverAfterWave, atPercent: Math.round(pb.switchover!.atPercent * 100), steps: pb.switchover!.steps.map((s) => s.name) } : null,
    concurrency: pb.waves.concurrency,
    maxFailures: pb.waves.maxFailures,
    pause: pb.waves.pause,
    verify: pb.verify.map((g) => ({ name: g.name, kind: g.gate, perHost: g.perHost })),
    onFailure: pb.onFailure,
    hosts: Object.fromEntries(
      pb.hosts.map((h) => {
        const wave = plan.waves.find((w) => w.hosts.includes(h.name))!.index;
        return [
          h.name,
          pb.steps.map((s) => {
            const undoCommand = describeUndo(pb, s, h, wave);
            return { step: s.name, action: s.action, command: describeStep(pb, s, h, wave), undo: hasUndo(s), ...(undoCommand !== undefined ? { undoCommand } : {}) };
          }),
        ];
      }),
    ),
  };
}

function hasUndo(s: Playbook['steps'][number]): boolean {
  const a = findAction(s.action)!;
  return !!a.undo && (a.hasUndo ? a.hasUndo(s.params) : true);
}

export function planText(pb: Playbook, plan: Plan): string {
  const out: string[] = [];
  const byName = new Map(pb.hosts.map((h) => [h.name, h]));
  out.push(chalk.bold(`${plan.release} ${plan.version}`) + ` → group ${plan.group}: ${pb.hosts.length} hosts in ${plan.waves.length} waves (concurrency ${pb.waves.concurrency}, maxFailures ${pb.waves.maxFailures}, pause ${pb.waves.pause.kind === 'duration' ? `${pb.waves.pause.ms}ms` : pb.waves.pause.kind})`);
  out.push(`transport: ${pb.transport.type}`);
  out.push('');
  out.push(chalk.bold('steps per host:'));
  pb.steps.forEach((s, i) => out.push(`  ${i + 1}. ${s.name}${hasUndo(s) ? '' : chalk.yellow('  (no undo)')}`));
  out.push('');
  for (const w of plan.waves) {
    out.push(chalk.bold(`wave ${w.index}`) + ` (${w.hosts.length}): ${w.hosts.join(', ')}`);
    // Every host's resolved commands: a dry run shows exactly what would run where.
    for (const name of w.hosts) {
      const host = byName.get(name)!;
      out.push(`  ${host.name}:`);
      for (const s of pb.steps) {
        const undo = describeUndo(pb, s, host, w.index);
        out.push(`    ${s.name}: ${describeStep(pb, s, host, w.index)}${undo !== undefined ? `   (undo: ${undo})` : ''}`);
      }
    }
    if (pb.verify.length) out.push(`  verify: ${pb.verify.map((g) => g.name).join(', ')}`);
    if (plan.switchoverAfterWave === w.index) out.push(chalk.cyan(`  switchover (GREEN ≥ ${Math.round(pb.switchover!.atPercent * 100)}%): ${pb.switchover!.steps.map((s) => s.name).join(', ')}`));
  }
  out.push('');
  out.push('dry run: nothing was contacted and nothing changed.');
  return out.join('\n');
}

/** One rule's state for `graywave status`, e.g. "gray-entry: 25% of unpinned requests to GREEN (lb1) after wave 2 (read back: …)". */
export function routingLine(st: RoutingRuleState): string {
  const at = st.phase !== undefined && st.wave !== undefined ? routingPoint(st.phase, st.wave) : undefined;
  const what = st.detail ? `${st.detail}${st.changedAtWave !== undefined ? ` (set ${st.changedAtWave === 0 ? 'before wave 1' : `after wave ${st.changedAtWave}`})` : ''}` : undefined;
  const readBack = st.observed ? ` (read back: ${st.observed})` : '';
  switch (st.state) {
    case 'not-applied':
      return `${st.rule}: not applied yet`;
    case 'verified':
      return `${st.rule}: ${what ?? 'in place'} ${at}${readBack}`;
    case 'applied':
      return `${st.rule}: ${what ?? 'changed'} ${at}, not confirmed yet`;
    case 'failed': {
      const where = st.failedAt ? ` ${routingPoint(st.failedAt.phase ?? 'widen', st.failedAt.wave)}` : '';
      return `${st.rule}: FAILED${where}: ${st.error ?? 'unknown error'}${at ? `; last reached ${at}${what ? `: ${what}` : ''}` : ''}`;
    }
    case 'undone':
      return `${st.rule}: undone (its changes were taken back)`;
    case 'removed':
      return `${st.rule}: removed at the end (end: remove)`;
    case 'undo-failed':
      return `${st.rule}: UNDO FAILED: ${st.error ?? 'unknown error'} (${st.inEffect} change(s) still in effect${what ? `: ${what}` : ''})`;
  }
}

export function statusText(r: StatusReport): string {
  const out: string[] = [];
  out.push(chalk.bold(`${r.release} ${r.version}: ${r.status}`) + (r.reason ? ` — ${r.reason}` : ''));
  if (r.lockedBy) out.push(`locked by ${r.lockedBy}`);
  for (const w of r.waves) {
    out.push(`wave ${w.index}: ${w.status}${w.approved ? ' (approved)' : ''}`);
    for (const h of w.hosts) {
      const line = `  ${h.host.padEnd(16)} ${h.status.padEnd(14)} ${h.step ? `${h.step} (${h.stepPhase})` : ''}${h.error ? ` — ${h.error}` : ''}${h.endedAt ? `  ${h.endedAt}` : ''}`;
      out.push(h.stillDrained ? chalk.red(line + '  STILL DRAINED') : line);
    }
    for (const j of w.judges ?? []) {
      const [head, ...rest] = evidenceLines(j.evidence);
      out.push(`  judge ${j.check} (${j.t}): ${head}`, ...rest.map((l) => `    ${l}`));
    }
  }
  if (r.switchover) out.push(`switchover after wave ${r.switchover.afterWave}: ${r.switchover.done ? 'done' : 'not yet'}`);
  if (r.routing?.length) {
    out.push('routing:');
    for (const st of r.routing) {
      const line = `  ${routingLine(st)}`;
      out.push(st.state === 'failed' || st.state === 'undo-failed' ? chalk.red(line) : line);
    }
  }
  if (r.stillDrained.length) out.push(chalk.red(`still drained: ${r.stillDrained.join(', ')}`));
  if (r.notServing?.length) {
    out.push(chalk.red(`restored but NOT SERVING (${r.notServing.length}):`));
    for (const n of r.notServing) out.push(chalk.red(`  ${n.host.padEnd(16)} ${n.step}: ${n.error}`));
  }
  return out.join('\n');
}
