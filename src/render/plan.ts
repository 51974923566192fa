import chalk from 'chalk';
import { evidenceLines } from '../gates/judge.js';
import { describeStep, describeUndo, type Plan } from '../plan/build.js';
import type { Playbook } from '../playbook/types.js';
import { findAction } from '../actions/index.js';
import { findGate } from '../gates/index.js';
import type { StatusReport } from '../app/status.js';
import { limitedLines } from '../app/limited.js';
import type { RoutingRuleState } from '../routing/run.js';
import { routingPoint } from './lines.js';
import { planView } from './plan-view.js';
import { resolveEffects } from '../plan/resolve.js';
import { pauseAfter } from '../plan/pause.js';

/** The dry run as JSON: pinned fields first, details after. */
export function planJson(pb: Playbook, plan: Plan) {
  return {
    release: plan.release,
    version: plan.version,
    group: plan.group,
    planHash: plan.planHash,
    waves: plan.waves.map((w) => ({ index: w.index, hosts: w.hosts })),
    steps: plan.steps,
    switchover: plan.switchoverAfterWave
      ? { afterWave: plan.switchoverAfterWave, atPercent: Math.round(pb.switchover!.atPercent * 100), steps: pb.switchover!.steps.map((s) => s.name) }
      : null,
    concurrency: pb.waves.concurrency,
    maxFailures: pb.waves.maxFailures,
    pause: pb.waves.pause,
    verify: pb.verify.map((g) => ({ name: g.name, kind: g.gate, perHost: g.perHost, check: findGate(g.gate)!.describe(g.params) })),
    // Extensions for reviewers: the canary wave, and what happens after each wave but the last.
    canary: pb.waves.canary && plan.waves.length > 1 ? { wave: 1, hosts: plan.waves[0]!.hosts.length } : null,
    ...(pb.waves.afterCanary ? { afterCanary: pb.waves.afterCanary } : {}),
    between: plan.waves.slice(0, -1).map((w) => ({ afterWave: w.index, ...pauseAfter(pb.waves, w.index) })),
    onFailure: pb.onFailure,
    hosts: Object.fromEntries(
      pb.hosts.map((h) => {
        const wave = plan.waves.find((w) => w.hosts.includes(h.name))!.index;
        return [
          h.name,
          pb.steps.map((s) => {
            const undoCommand = describeUndo(pb, s, h, wave);
            const resolved = resolveEffects(pb, s, h, wave);
            return {
              step: s.name,
              action: s.action,
              command: describeStep(pb, s, h, wave),
              undo: hasUndo(s),
              ...(undoCommand !== undefined ? { undoCommand } : {}),
              ...(resolved.length ? { resolved } : {}),
            };
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
  const v = planView(pb, plan, (s) => findAction(s.action)!);
  const out: string[] = [chalk.bold(v.title), ...v.facts.map((f) => `  ${f}`), ''];
  const diff = (indent: string, perHost?: [string, string][]) =>
    perHost ? [`${indent}‹…› per host: ${perHost.map(([h, x]) => `${h} ${x || '(empty)'}`).join(' · ')}`] : [];
  for (const w of v.waves) {
    out.push(chalk.bold(`wave ${w.index}`) + ` (${w.label}): ${w.hosts.join(', ')}`);
    for (const s of w.steps) {
      out.push(`  ${s.n}. ${s.name}: ${s.line}${s.noUndo ? chalk.yellow('  (no undo)') : ''}`);
      out.push(...diff('       ', s.perHost));
      if (s.undo) out.push(`       undo: ${s.undo.line}`, ...diff('         ', s.undo.perHost));
      for (const e of s.effects) out.push(`       ${e.line}`, ...diff('         ', e.perHost));
    }
    if (v.verify.length) out.push(`  verify: ${verifyNames(pb)}`);
    if (w.switchover) out.push(chalk.cyan(`  ${w.switchover}`));
    if (w.then) out.push(`  then: ${w.then}`);
  }
  if (v.verify.length) out.push('', chalk.bold('checks after each wave:'), ...v.verify.map((c) => `  - ${c}`));
  if (v.notes.length) out.push('', ...v.notes);
  out.push('', 'dry run: nothing was contacted and nothing changed.');
  return out.join('\n');
}

/** The same plan as markdown, for a pull-request comment. */
export function planMarkdown(pb: Playbook, plan: Plan): string {
  const v = planView(pb, plan, (s) => findAction(s.action)!);
  const code = (t: string) => (t ? `\`${t.replace(/`/g, 'ˋ').replace(/\|/g, '\\|')}\`` : '');
  const cell = (line: string, perHost?: [string, string][]) => code(line) + (perHost ? perHost.map(([h, x]) => `<br>${h}: ${code(x)}`).join('') : '');
  const out: string[] = [`### ${v.title}`, '', ...v.facts.map((f) => `- ${f}`), ''];
  for (const w of v.waves) {
    out.push(`#### Wave ${w.index} (${w.label}): ${w.hosts.map(code).join(', ')}`, '', '| # | step | what it does | reads / writes |', '|---|---|---|---|');
    for (const s of w.steps) {
      const effects = [...(s.undo ? [`undo: ${cell(s.undo.line, s.undo.perHost)}`] : []), ...s.effects.map((e) => cell(e.line, e.perHost))].join('<br>');
      out.push(`| ${s.n} | ${s.name}${s.noUndo ? ' (no undo)' : ''} | ${cell(s.line, s.perHost)} | ${effects} |`);
    }
    out.push('');
    if (v.verify.length) out.push(`Verify: ${verifyNames(pb)}.`);
    if (w.switchover) out.push(`**${w.switchover}**`);
    if (w.then) out.push(`Then: ${w.then}.`);
    out.push('');
  }
  if (v.verify.length) out.push('#### Checks after each wave', '', ...v.verify.map((c) => `- ${c}`), '');
  if (v.notes.length) out.push(...v.notes.map((n) => `- ${n}`), '');
  out.push('_Dry run: nothing was contacted and nothing changed._');
  return out.join('\n');
}

/** One rule's state for `graywave status`, e.g. "gray-entry: 25% of unpinned requests to GREEN (lb1) after wave 2 (read back: …)". */
export function routingLine(st: RoutingRuleState): string {
  const at = st.phase !== undefined && st.wave !== undefined ? routingPoint(st.phase, st.wave) : undefined;
  const what = st.detail
    ? `${st.detail}${st.changedAtWave !== undefined ? ` (set ${st.changedAtWave === 0 ? 'before wave 1' : `after wave ${st.changedAtWave}`})` : ''}`
    : undefined;
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

/** The checks after a wave, by name; under the hotfix policy those it skips are named as skipped. */
function verifyNames(pb: Playbook): string {
  const skipped = pb.hotfix ? pb.verify.filter((g) => g.skipOnHotfix).map((g) => g.name) : [];
  const run = pb.verify.filter((g) => !skipped.includes(g.name)).map((g) => g.name);
  return [run.join(', ') || 'none', ...(skipped.length ? [`(skipped on hotfix: ${skipped.join(', ')})`] : [])].join(' ');
}

export function statusText(r: StatusReport): string {
  const out: string[] = [];
  out.push(chalk.bold(`${r.release} ${r.version}: ${r.status}`) + (r.reason ? ` — ${r.reason}` : ''));
  if (r.limited) out.push(...limitedLines(r.limited));
  if (r.lockedBy) out.push(`locked by ${r.lockedBy}`);
  // A release waiting for a person: what `graywave approve` approves (an app's paused check, or the release's wave).
  for (const p of r.pending ?? []) out.push(chalk.yellow(`waiting for approval: ${p.app ? `app ${p.app}, ` : ''}wave ${p.wave}: ${p.detail}`));
  if (r.pending?.length) out.push('  (graywave approve, then graywave resume)');
  // A release train: each app's progress, then the train's waves with every app's hosts.
  for (const a of r.apps ?? []) {
    const waves = a.waves.map((w) => `${w.index} ${w.status}`).join(', ');
    out.push(
      `app ${a.name.padEnd(12)} ${a.status.padEnd(10)} ${a.done}/${a.hosts} hosts done${a.deploy ? '' : ' (deploy: false)'}${a.after.length ? ` · after ${a.after.join(', ')}` : ''} · waves: ${waves}`,
    );
  }
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
