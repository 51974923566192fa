import chalk from 'chalk';
import { relative } from 'node:path';
import { findAction } from '../actions/index.js';
import { findGate } from '../gates/index.js';
import { pauseAfter } from '../plan/pause.js';
import type { TrainAppPlan, TrainPlan } from '../plan/train.js';
import { planJson } from './plan.js';
import { planView, type WaveView } from './plan-view.js';

/**
 * `graywave plan` of a release train: per wave, every app's part in start order (its hosts and its pipeline,
 * resolved as for one playbook), then the train's checks, switchover and pause. Text, markdown and JSON.
 */

const actionOf = (s: { action: string }) => findAction(s.action)!;

function appNote(a: TrainAppPlan): string {
  const parts: string[] = [];
  if (a.after.length) parts.push(`after ${a.after.join(', ')}`);
  if (!a.deploy) parts.push(`deploy: false — drained, relabelled and restored; skipped: ${a.skippedSteps.join(', ') || 'no deploy step'}`);
  return parts.length ? ` (${parts.join('; ')})` : '';
}

interface Section {
  app: TrainAppPlan;
  wave: WaveView;
}

function sections(tp: TrainPlan, index: number): Section[] {
  return tp.apps.flatMap((app) => {
    const w = planView(app.playbook, app.plan, actionOf).waves.find((x) => x.index === index);
    return w ? [{ app, wave: w }] : [];
  });
}

function facts(tp: TrainPlan): string[] {
  const hosts = tp.apps.reduce((n, a) => n + a.playbook.hosts.length, 0);
  const pb = tp.playbook;
  return [
    `${tp.apps.length} apps, ${hosts} hosts in ${tp.plan.waves.length} waves (wave k takes the k-th slice of every app: canary ${pb.waves.canary ?? 0}, then ${'percent' in pb.waves.size ? `${Math.round(pb.waves.size.percent * 100)}%` : `${pb.waves.size.count} hosts`} of each app)`,
    `apps in start order: ${tp.apps.map((a) => `${a.name}${appNote(a)}`).join(', ')}`,
    'inside a wave an app starts once the apps in its after: are done with theirs; the others run in parallel; one app failing holds the others (hosts in flight finish) and halts the train',
    `a failed check: ${pb.onFailure}${pb.onFailure.startsWith('rollback') ? ' (every app, in reverse start order)' : ''}`,
  ];
}

export function trainPlanText(tp: TrainPlan): string {
  const tv = planView(tp.playbook, tp.plan, actionOf);
  const out: string[] = [chalk.bold(`release train ${tp.plan.release} ${tp.plan.version} → group ${tp.plan.group}`), ...facts(tp).map((f) => `  ${f}`), ''];
  const diff = (indent: string, perHost?: [string, string][]) =>
    perHost ? [`${indent}‹…› per host: ${perHost.map(([h, x]) => `${h} ${x || '(empty)'}`).join(' · ')}`] : [];
  for (const w of tv.waves) {
    out.push(chalk.bold(`wave ${w.index}`) + ` (${w.label})`);
    for (const { app, wave } of sections(tp, w.index)) {
      out.push(`  ${chalk.bold(app.name)}${app.after.length ? ` (after ${app.after.join(', ')})` : ''}: ${wave.hosts.join(', ')}`);
      for (const s of wave.steps) {
        out.push(`    ${s.n}. ${s.name}: ${s.line}${s.noUndo ? chalk.yellow('  (no undo)') : ''}`, ...diff('         ', s.perHost));
        if (s.undo) out.push(`         undo: ${s.undo.line}`, ...diff('           ', s.undo.perHost));
        for (const e of s.effects) out.push(`         ${e.line}`, ...diff('           ', e.perHost));
      }
      if (app.playbook.verify.length) out.push(`    ${app.name}'s checks: ${app.playbook.verify.map((g) => g.name).join(', ')}`);
    }
    if (tp.playbook.verify.length) out.push(`  train checks (once every app's part is done): ${tp.playbook.verify.map((g) => g.name).join(', ')}`);
    if (w.switchover) out.push(chalk.cyan(`  ${w.switchover.replace('of the fleet', 'of every app')}`));
    if (w.then) out.push(`  then: ${w.then}`);
  }
  if (tv.verify.length) out.push('', chalk.bold('train checks after each wave:'), ...tv.verify.map((c) => `  - ${c}`));
  out.push('', 'dry run: nothing was contacted and nothing changed.');
  return out.join('\n');
}

export function trainPlanMarkdown(tp: TrainPlan): string {
  const tv = planView(tp.playbook, tp.plan, actionOf);
  const code = (t: string) => (t ? `\`${t.replace(/`/g, 'ˋ').replace(/\|/g, '\\|')}\`` : '');
  const out: string[] = [`### Release train ${tp.plan.release} ${tp.plan.version} → group ${tp.plan.group}`, '', ...facts(tp).map((f) => `- ${f}`), ''];
  for (const w of tv.waves) {
    out.push(`#### Wave ${w.index} (${w.label})`, '', '| app | hosts | steps |', '|---|---|---|');
    for (const { app, wave } of sections(tp, w.index))
      out.push(
        `| ${app.name}${app.after.length ? ` (after ${app.after.join(', ')})` : ''} | ${wave.hosts.map(code).join(', ')} | ${wave.steps.map((s) => `${s.n}. ${s.name}: ${code(s.line)}`).join('<br>')} |`,
      );
    out.push('');
    if (tp.playbook.verify.length) out.push(`Train checks: ${tp.playbook.verify.map((g) => g.name).join(', ')}.`);
    if (w.switchover) out.push(`**${w.switchover.replace('of the fleet', 'of every app')}**`);
    if (w.then) out.push(`Then: ${w.then}.`);
    out.push('');
  }
  out.push('_Dry run: nothing was contacted and nothing changed._');
  return out.join('\n');
}

/** `plan --json` of a train: the train's waves (`app/host`), and each app's own plan as `plan --json` prints it. */
export function trainPlanJson(tp: TrainPlan) {
  const pb = tp.playbook;
  return {
    train: true,
    release: tp.plan.release,
    version: tp.plan.version,
    group: tp.plan.group,
    planHash: tp.plan.planHash,
    waves: tp.plan.waves.map((w) => ({
      index: w.index,
      hosts: w.hosts,
      apps: Object.fromEntries(tp.apps.map((a) => [a.name, a.plan.waves.find((x) => x.index === w.index)?.hosts ?? []])),
    })),
    apps: tp.apps.map((a) => ({
      name: a.name,
      after: a.after,
      deploy: a.deploy,
      playbook: relative(pb.dir, a.playbook.file) || a.playbook.file,
      skippedSteps: a.skippedSteps,
      plan: planJson(a.playbook, a.plan),
    })),
    switchover: tp.plan.switchoverAfterWave
      ? { afterWave: tp.plan.switchoverAfterWave, atPercent: Math.round(pb.switchover!.atPercent * 100), steps: pb.switchover!.steps.map((s) => s.name) }
      : null,
    verify: pb.verify.map((g) => ({ name: g.name, kind: g.gate, check: findGate(g.gate)!.describe(g.params) })),
    between: tp.plan.waves.slice(0, -1).map((w) => ({ afterWave: w.index, ...pauseAfter(pb.waves, w.index) })),
    onFailure: pb.onFailure,
  };
}
