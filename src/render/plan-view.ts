import type { Plan } from '../plan/build.js';
import { describeStep, describeUndo } from '../plan/build.js';
import { humanMs, pauseAfter, pauseText } from '../plan/pause.js';
import { resolveEffects } from '../plan/resolve.js';
import type { Host, Playbook, StepSpec } from '../playbook/types.js';
import { findGate } from '../gates/index.js';

/**
 * The dry run as a reviewer reads it (text and markdown are two renderings of this): the waves with the canary
 * labelled and what happens between them, the per-host pipeline once per wave with only what differs per host,
 * each provider step resolved to what it reads and writes, and the checks with their request and expectation.
 */
export interface PlanView {
  title: string;
  facts: string[];
  waves: WaveView[];
  verify: string[];
  notes: string[];
}

export interface WaveView {
  index: number;
  label: string;
  hosts: string[];
  steps: StepView[];
  /** What happens after this wave before the next (undefined after the last). */
  then?: string;
  switchover?: string;
}

export interface StepView {
  n: number;
  name: string;
  /** The line (as for the wave's first host), with ‹…› where hosts differ. */
  line: string;
  /** Per host, what ‹…› stands for (only when hosts differ). */
  perHost?: [string, string][];
  undo?: { line: string; perHost?: [string, string][] };
  effects: { line: string; perHost?: [string, string][] }[];
  noUndo: boolean;
}

/** Splits per-host lines into the common text with ‹…› and each host's part; cut at separators so values stay whole. */
export function commonAndDiff(hosts: string[], lines: string[]): { line: string; perHost?: [string, string][] } {
  if (lines.every((l) => l === lines[0])) return { line: lines[0] ?? '' };
  const sep = /[\s/:'"=,;@()[\]{}]/;
  let pre = 0;
  const first = lines[0]!;
  while (pre < first.length && lines.every((l) => l[pre] === first[pre])) pre++;
  while (pre > 0 && !sep.test(first[pre - 1]!)) pre--;
  let suf = 0;
  const minLen = Math.min(...lines.map((l) => l.length)) - pre;
  while (suf < minLen && lines.every((l) => l[l.length - 1 - suf] === first[first.length - 1 - suf])) suf++;
  while (suf > 0 && !sep.test(first[first.length - suf]!)) suf--;
  const mid = (l: string) => l.slice(pre, l.length - suf);
  return { line: `${first.slice(0, pre)}‹…›${first.slice(first.length - suf)}`, perHost: hosts.map((h, i) => [h, mid(lines[i]!)]) };
}

function stepHasUndo(s: StepSpec, action: { undo?: unknown; hasUndo?: (p: unknown) => boolean }): boolean {
  return !!action.undo && (action.hasUndo ? action.hasUndo(s.params) : true);
}

export function planView(pb: Playbook, plan: Plan, actionOf: (s: StepSpec) => { undo?: unknown; hasUndo?: (p: unknown) => boolean }): PlanView {
  const byName = new Map(pb.hosts.map((h) => [h.name, h]));
  const facts: string[] = [];
  facts.push(
    `${pb.hosts.length} hosts in ${plan.waves.length} waves${pb.waves.by ? ` by label ${pb.waves.by}` : ''}${pb.waves.mode === 'rolling' ? ` (rolling: ${pb.waves.concurrency} in flight)` : ''}`,
  );
  facts.push(`transport: ${pb.transport.type}${pb.transport.type === 'ssh' && pb.transport.user ? ` as ${String(pb.transport.user)}` : ''}`);
  facts.push(
    `per wave: ${pb.waves.concurrency} hosts at once; the release halts when ${pb.waves.maxFailures ? `more than ${pb.waves.maxFailures} hosts` : 'any host'} of a wave fail${pb.waves.maxFailures ? '' : 's'}`,
  );
  facts.push(
    `a failed check: ${pb.onFailure === 'halt' ? 'halt (the journal keeps everything; resume or rollback)' : pb.onFailure === 'freeze' ? 'freeze (halt, change nothing)' : pb.onFailure === 'rollback-wave' ? 'roll back the wave' : 'roll back every wave'}`,
  );
  if (plan.hotfix) facts.unshift(`HOTFIX: ${plan.hotfix.reason} — a canary, then one wave`);
  const last = plan.waves[plan.waves.length - 1]?.index;
  const waves: WaveView[] = plan.waves.map((w) => {
    const hosts = w.hosts.map((n) => byName.get(n)!) as Host[];
    const canary = w.index === 1 && !!pb.waves.canary && plan.waves.length > 1;
    const label = `${canary ? 'canary, ' : ''}${hosts.length} host${hosts.length === 1 ? '' : 's'}${pb.waves.by ? `, ${pb.waves.by} ${[...new Set(hosts.map((h) => h.labels[pb.waves.by!]))].join('+')}` : ''}`;
    const steps: StepView[] = pb.steps.map((s, i) => {
      const action = actionOf(s);
      const main = commonAndDiff(
        w.hosts,
        hosts.map((h) => describeStep(pb, s, h, w.index)),
      );
      const undos = hosts.map((h) => describeUndo(pb, s, h, w.index));
      const undo =
        undos[0] !== undefined
          ? commonAndDiff(
              w.hosts,
              undos.map((u) => u ?? ''),
            )
          : undefined;
      const perHostEffects = hosts.map((h) => resolveEffects(pb, s, h, w.index));
      const effects = (perHostEffects[0] ?? []).map((_, j) =>
        commonAndDiff(
          w.hosts,
          perHostEffects.map((e) => e[j] ?? ''),
        ),
      );
      return { n: i + 1, name: s.name, ...main, ...(undo ? { undo } : {}), effects, noUndo: !stepHasUndo(s, action) };
    });
    const p = pauseAfter(pb.waves, w.index);
    const gateApproval = pb.verify.some((g) => g.gate === 'approve');
    const then =
      w.index === last
        ? undefined
        : p.kind === 'approve' || gateApproval
          ? pauseText({ kind: 'approve' })
          : p.kind === 'duration'
            ? pauseText(p)
            : 'the next wave starts at once';
    const switchover =
      plan.switchoverAfterWave === w.index
        ? `switchover (GREEN carries ≥ ${Math.round(pb.switchover!.atPercent * 100)}% of the fleet): ${pb.switchover!.steps.map((s) => `${s.name}: ${describeStep(pb, s, { name: '', address: '', vars: {}, labels: {} }, w.index)}`).join('; ')}`
        : undefined;
    return { index: w.index, label, hosts: w.hosts, steps, ...(then ? { then } : {}), ...(switchover ? { switchover } : {}) };
  });
  const verify = pb.verify.map((g) => {
    const gate = findGate(g.gate)!;
    let what: string;
    try {
      what = gate.describe(g.params);
    } catch {
      what = g.gate;
    }
    return `${g.name} (${g.gate}${g.perHost ? ', once per host of the wave' : ''}${g.skipOnHotfix ? ', skipped on hotfix' : ''}): ${what}${g.gate === 'query' || g.gate === 'compare' || g.gate === 'approve' ? '' : ` — at most ${humanMs(g.timeoutMs)}`}`;
  });
  const notes: string[] = [];
  for (const g of pb.watch) notes.push(`watch ${g.name} every ${humanMs(g.intervalMs ?? 10_000)} while a wave runs: ${findGate(g.gate)!.describe(g.params)}`);
  for (const r of pb.routing ?? [])
    notes.push(`routing ${r.name} (${r.type}): published before wave 1, widened after each verified wave, at the end: ${r.end}`);
  return { title: `${plan.release} ${plan.version} → group ${plan.group}`, facts, waves, verify, notes };
}
