import { noActionMessage } from '../messages.js';
import { findAction } from '../../actions/index.js';
import { commonStepKeys } from '../schema.js';
import type { Path, Source } from '../source.js';
import type { StepSpec } from '../types.js';
import { usesHost } from '../../util/template.js';
import type { ParseContext, Uses } from './context.js';
import { addZodIssues, dotted, ownLimit } from './issues.js';

const DEFAULT_STEP_TIMEOUT = 10 * 60_000;

/** The common keys (name, timeout, retries, interval) of a step, checked (ok: false after reporting a problem), and the rest. */
function commonKeys(src: Source, path: Path, obj: Record<string, unknown>): { ok: boolean; common: Record<string, unknown>; rest: Record<string, unknown> } {
  const common: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  let ok = true;
  for (const [k, v] of Object.entries(obj)) {
    if (!(k in commonStepKeys)) {
      rest[k] = v;
      continue;
    }
    const r = commonStepKeys[k as keyof typeof commonStepKeys].safeParse(v);
    if (r.success) common[k] = r.data;
    else (addZodIssues(src, [...path, k], r.error), (ok = false));
  }
  return { ok, common, rest };
}

/** Parses one `steps:` entry: common keys plus exactly one action key. */
export function parseStep(src: Source, path: Path, raw: unknown): StepSpec | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    src.add(path, `${dotted(path)}: a step is a mapping such as {name: stop, run: "..."} or {drain: NAME}`);
    return undefined;
  }
  const obj = raw as Record<string, unknown>;
  const actionKeys = Object.keys(obj).filter((k) => findAction(k));
  if (actionKeys.length !== 1) {
    src.add(
      path,
      actionKeys.length === 0 ? noActionMessage(dotted(path), Object.keys(obj)) : `${dotted(path)}: one action per step, found ${actionKeys.join(' and ')}`,
    );
    return undefined;
  }
  const action = findAction(actionKeys[0]!)!;
  const { ok: commonOk, common, rest } = commonKeys(src, path, obj);
  let params: unknown;
  let ok = commonOk;
  if (!action.stepLevel) {
    for (const k of Object.keys(rest)) {
      if (k !== action.key) (src.add([...path, k], `unknown key "${k}" in a ${action.key} step`, { key: true }), (ok = false));
    }
  }
  const r = action.params.safeParse(action.stepLevel ? rest : rest[action.key]);
  if (r.success) params = r.data;
  else (addZodIssues(src, action.stepLevel ? path : [...path, action.key], r.error), (ok = false));
  if (!ok) return undefined;
  return {
    name: (common.name as string | undefined) ?? action.defaultName(params),
    action: action.key,
    params,
    timeoutMs: (common.timeout as number | undefined) ?? Math.max(DEFAULT_STEP_TIMEOUT, ownLimit(params)),
    retries: (common.retries as number | undefined) ?? 0,
    intervalMs: common.interval as number | undefined,
    ...(common.tags ? { tags: common.tags as string[] } : {}),
  };
}

/** Deploy paths on the hosts: no `..` segment in `to`, and `release` names one directory (no traversal out of releases/). */
function checkDeployPaths(src: Source, path: Path, p: { to: string; release?: string }): void {
  if (p.to.split('/').includes('..')) src.add([...path, 'to'], `deploy.to: ${JSON.stringify(p.to)} contains a ".." segment; give the plain absolute path`);
  if (p.release !== undefined && (p.release.includes('/') || p.release.startsWith('.')))
    src.add([...path, 'release'], `deploy.release: ${JSON.stringify(p.release)} must name one directory (no "/", no leading ".")`);
}

/** The `steps:` section: each entry, the providers it uses, deploy paths, unique names. */
export function parseSteps(c: ParseContext, uses: Uses): StepSpec[] {
  const { src, d } = c;
  const steps: StepSpec[] = [];
  (Array.isArray(d.steps) ? d.steps : []).forEach((raw, i) => {
    const step = parseStep(src, ['steps', i], raw);
    if (!step) return;
    const action = findAction(step.action)!;
    uses.check(['steps', i], action.stepLevel ? '' : action.key, action.uses?.(step.params) ?? []);
    if (step.action === 'deploy') checkDeployPaths(src, ['steps', i, 'deploy'], step.params as { to: string; release?: string });
    if (steps.some((s) => s.name === step.name)) src.add(['steps', i], `duplicate step name "${step.name}": give one of them a name:`);
    steps.push(step);
  });
  return steps;
}

/** `switchover:` release-level steps, run once on this machine when GREEN carries `at` of the fleet. */
export function parseSwitchover(c: ParseContext): { atPercent: number; steps: StepSpec[] } | undefined {
  const { src, d, top } = c;
  if (!top?.switchover) return undefined;
  const rawSteps = (d.switchover as { steps?: unknown[] } | undefined)?.steps ?? [];
  const steps: StepSpec[] = [];
  top.switchover.steps.forEach((raw, i) => {
    const step = parseStep(src, ['switchover', 'steps', i], raw);
    if (!step) return;
    if (usesHost(JSON.stringify(rawSteps[i])))
      src.add(['switchover', 'steps', i], 'switchover steps run once for the release: {{host.*}} is not available here');
    steps.push(step);
  });
  const pct = parseFloat(top.switchover.at);
  if (pct <= 0 || pct > 100) src.add(['switchover', 'at'], 'switchover.at must be between 0% (exclusive) and 100%');
  return { atPercent: pct / 100, steps };
}
