import { noCheckMessage } from '../messages.js';
import { dirname } from 'node:path';
import { findGate } from '../../gates/index.js';
import { usesHost } from '../../util/template.js';
import { commonStepKeys } from '../schema.js';
import type { Path, Source } from '../source.js';
import type { GateSpec } from '../types.js';
import type { ParseContext, Uses } from './context.js';
import { addTlsFileIssues, addZodIssues, dotted, ownLimit } from './issues.js';

const DEFAULT_GATE_TIMEOUT = 10 * 60_000;

/** The keys every check may carry beside its gate key, taken out of `obj`; undefined after reporting a problem. */
function checkKeys(src: Source, path: Path, obj: Record<string, unknown>, watch: boolean) {
  const { name, timeout, interval, skipOnHotfix, errorLimit } = obj;
  for (const k of ['name', 'timeout', 'skipOnHotfix', 'errorLimit', ...(watch ? ['interval'] : [])]) delete obj[k];
  if (skipOnHotfix !== undefined && typeof skipOnHotfix !== 'boolean') return (src.add([...path, 'skipOnHotfix'], 'skipOnHotfix: true or false'), undefined);
  if (errorLimit !== undefined && !(Number.isInteger(errorLimit) && (errorLimit as number) >= 1)) {
    return (src.add([...path, 'errorLimit'], 'errorLimit: a whole number of consecutive errors, at least 1'), undefined);
  }
  return { name, timeout, interval, skipOnHotfix: skipOnHotfix as boolean | undefined, errorLimit: errorLimit as number | undefined };
}

/** The gate kind of an entry and its checked params; undefined after reporting a problem. */
function gateParams(src: Source, path: Path, obj: Record<string, unknown>) {
  const keys = Object.keys(obj).filter((k) => findGate(k));
  if (keys.length !== 1) {
    src.add(path, keys.length === 0 ? noCheckMessage(dotted(path), Object.keys(obj)) : `${dotted(path)}: one check per entry, found ${keys.join(' and ')}`);
    return undefined;
  }
  const gate = findGate(keys[0]!)!;
  if (!gate.stepLevel) for (const k of Object.keys(obj)) if (k !== gate.key) src.add([...path, k], `unknown key "${k}" in a ${gate.key} check`, { key: true });
  const r = gate.params.safeParse(gate.stepLevel ? obj : obj[gate.key]);
  if (!r.success) return (addZodIssues(src, gate.stepLevel ? path : [...path, gate.key], r.error), undefined);
  addTlsFileIssues(src, gate.stepLevel ? path : [...path, gate.key], r.data, dirname(src.file));
  return { gate, params: r.data as unknown };
}

/** Parses one `verify:` or `watch:` entry: common keys plus exactly one gate key. */
export function parseGate(src: Source, path: Path, raw: unknown, watch = false): GateSpec | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    src.add(path, `${dotted(path)}: a check is a mapping such as {name: smoke, run: "..."} or {http: {...}}`);
    return undefined;
  }
  const obj = { ...(raw as Record<string, unknown>) };
  const keys = checkKeys(src, path, obj, watch);
  if (!keys) return undefined;
  const g = gateParams(src, path, obj);
  if (!g) return undefined;
  const { gate, params } = g;
  const n = commonStepKeys.name.safeParse(keys.name);
  if (!n.success) return (addZodIssues(src, [...path, 'name'], n.error), undefined);
  const t = commonStepKeys.timeout.safeParse(keys.timeout);
  if (!t.success) return (addZodIssues(src, [...path, 'timeout'], t.error), undefined);
  const iv = commonStepKeys.interval.safeParse(keys.interval);
  if (!iv.success) return (addZodIssues(src, [...path, 'interval'], iv.error), undefined);
  if (watch && gate.key === 'approve') return (src.add(path, 'approve cannot be a watch check'), undefined);
  return {
    intervalMs: watch ? (iv.data ?? 10_000) : undefined,
    name: n.data ?? gate.defaultName(params),
    gate: gate.key,
    params,
    perHost: JSON.stringify(raw).includes('{{') && usesHost(JSON.stringify(raw)),
    timeoutMs: t.data ?? Math.max(DEFAULT_GATE_TIMEOUT, ownLimit(params)),
    ...(keys.skipOnHotfix ? { skipOnHotfix: true } : {}),
    ...(keys.errorLimit !== undefined ? { errorLimit: keys.errorLimit } : {}),
  };
}

/** The `verify:` (after each wave) or `watch:` (while a wave runs) section. */
export function parseGates(c: ParseContext, uses: Uses, section: 'verify' | 'watch'): GateSpec[] {
  const out: GateSpec[] = [];
  const raw = c.d[section];
  (Array.isArray(raw) ? raw : []).forEach((entry, i) => {
    const gate = parseGate(c.src, [section, i], entry, section === 'watch');
    if (!gate) return;
    uses.check([section, i], gate.gate, findGate(gate.gate)!.uses?.(gate.params) ?? []);
    out.push(gate);
  });
  return out;
}
