import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import type { z } from 'zod';
import { findAction } from '../actions/index.js';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { findGate } from '../gates/index.js';
import { findProviderType } from '../providers/index.js';
import { findTransportType } from '../transport/index.js';
import { tlsFileIssues } from '../transport/tls.js';
import { isKnownTemplateName, templateNames, usesHost } from '../util/template.js';
import { notifyEntrySchema, toNotifySpec, type NotifySpec } from '../notify/config.js';
import { commonStepKeys, hostsSchema, topSchema } from './schema.js';
import { inventorySource } from './inventory.js';
import { parseRouting } from '../routing/index.js';
import { Source, type Path } from './source.js';
import { etcdStateOptions } from '../journal/etcd-backend.js';
import { zookeeperStateOptions } from '../journal/zookeeper-backend.js';
import type { GateSpec, Host, Playbook, StepSpec, WaveSpec } from './types.js';

const MAX_FILE_BYTES = 1024 * 1024;
const DEFAULT_STEP_TIMEOUT = 10 * 60_000;
const DEFAULT_GATE_TIMEOUT = 10 * 60_000;

/** Copies zod issues into the source's issue list, each at the position of the value it is about. */
function addZodIssues(src: Source, base: Path, error: z.ZodError): void {
  for (const issue of error.issues) {
    const path = [...base, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) src.add([...path, key], `unknown key "${key}"${where(path)}`, { key: true });
    } else if (issue.code === 'invalid_type' && issue.received === 'undefined') {
      src.add(path.slice(0, -1), `missing required key "${String(path[path.length - 1])}"${where(path.slice(0, -1))}`);
    } else {
      src.add(path, `${dotted(path)}: ${issue.message}`);
    }
  }
}

/** A `tls` option's file that is missing or unreadable is a playbook error at its key (src/transport/tls.ts reads them later). */
function addTlsFileIssues(src: Source, base: Path, parsed: unknown, dir: string): void {
  for (const issue of tlsFileIssues(parsed, dir)) {
    const path = [...base, ...issue.path];
    src.add(path, `${dotted(path)}: ${issue.message}`);
  }
}

function dotted(path: Path): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('').replace(/^\./, '') || '(top level)';
}
function where(path: Path): string {
  return path.length ? ` in ${dotted(path)}` : '';
}

function readSource(file: string, issues: ConfigIssue[]): Source | undefined {
  let text: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > MAX_FILE_BYTES) {
      issues.push({ file, line: 1, col: 1, message: `file is ${st.size} bytes; playbooks and inventories are limited to ${MAX_FILE_BYTES}` });
      return undefined;
    }
    text = readFileSync(file, 'utf8');
  } catch (err) {
    issues.push({ file, line: 1, col: 1, message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
    return undefined;
  }
  return new Source(file, text);
}

/**
 * A step or gate with its own time limit (waitDrained `timeout`, a query gate's `for`) must not be cut short by
 * the engine's default limit: default to that limit plus one interval and some slack.
 */
function ownLimit(params: unknown): number {
  if (params === null || typeof params !== 'object') return 0;
  const p = params as { timeout?: unknown; for?: unknown; interval?: unknown };
  const own = typeof p.timeout === 'number' ? p.timeout : typeof p.for === 'number' ? p.for : 0;
  return own ? own + (typeof p.interval === 'number' ? p.interval : 0) + 30_000 : 0;
}

/** Parses one `steps:` entry: common keys plus exactly one action key. */
function parseStep(src: Source, path: Path, raw: unknown, index: number): StepSpec | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    src.add(path, `${dotted(path)}: a step is a mapping such as {name: stop, run: "..."} or {drain: NAME}`);
    return undefined;
  }
  const obj = raw as Record<string, unknown>;
  const actionKeys = Object.keys(obj).filter((k) => findAction(k));
  if (actionKeys.length !== 1) {
    src.add(path, actionKeys.length === 0
      ? `${dotted(path)}: no action; use one of ${['run', 'drain', 'restore', 'relabel', 'waitDrained', 'deploy'].join(', ')}`
      : `${dotted(path)}: one action per step, found ${actionKeys.join(' and ')}`);
    return undefined;
  }
  const action = findAction(actionKeys[0]!)!;
  const common: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) (k in commonStepKeys ? common : rest)[k] = v;
  let ok = true;
  const commonParsed: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(common)) {
    const r = commonStepKeys[k as keyof typeof commonStepKeys].safeParse(v);
    if (r.success) commonParsed[k] = r.data;
    else (addZodIssues(src, [...path, k], r.error), (ok = false));
  }
  let params: unknown;
  if (action.stepLevel) {
    const r = action.params.safeParse(rest);
    if (r.success) params = r.data;
    else (addZodIssues(src, path, r.error), (ok = false));
  } else {
    for (const k of Object.keys(rest)) {
      if (k !== action.key) (src.add([...path, k], `unknown key "${k}" in a ${action.key} step`, { key: true }), (ok = false));
    }
    const r = action.params.safeParse(rest[action.key]);
    if (r.success) params = r.data;
    else (addZodIssues(src, [...path, action.key], r.error), (ok = false));
  }
  if (!ok) return undefined;
  return {
    name: (commonParsed.name as string | undefined) ?? action.defaultName(params),
    action: action.key,
    params,
    timeoutMs: (commonParsed.timeout as number | undefined) ?? Math.max(DEFAULT_STEP_TIMEOUT, ownLimit(params)),
    retries: (commonParsed.retries as number | undefined) ?? 0,
    intervalMs: commonParsed.interval as number | undefined,
  };
}

function parseGate(src: Source, path: Path, raw: unknown, watch = false): GateSpec | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    src.add(path, `${dotted(path)}: a check is a mapping such as {name: smoke, run: "..."} or {http: {...}}`);
    return undefined;
  }
  const obj = { ...(raw as Record<string, unknown>) };
  const name = obj.name;
  const timeout = obj.timeout;
  const interval = obj.interval;
  delete obj.name;
  delete obj.timeout;
  if (watch) delete obj.interval;
  const skipOnHotfix = obj.skipOnHotfix;
  delete obj.skipOnHotfix;
  if (skipOnHotfix !== undefined && typeof skipOnHotfix !== 'boolean') return (src.add([...path, 'skipOnHotfix'], 'skipOnHotfix: true or false'), undefined);
  const errorLimit = obj.errorLimit;
  delete obj.errorLimit;
  if (errorLimit !== undefined && !(Number.isInteger(errorLimit) && (errorLimit as number) >= 1)) {
    return (src.add([...path, 'errorLimit'], 'errorLimit: a whole number of consecutive errors, at least 1'), undefined);
  }
  const keys = Object.keys(obj).filter((k) => findGate(k));
  if (keys.length !== 1) {
    src.add(path, keys.length === 0 ? `${dotted(path)}: no check; use run, http, query, compare or approve` : `${dotted(path)}: one check per entry, found ${keys.join(' and ')}`);
    return undefined;
  }
  const gate = findGate(keys[0]!)!;
  let params: unknown;
  if (gate.stepLevel) {
    const r = gate.params.safeParse(obj);
    if (!r.success) return (addZodIssues(src, path, r.error), undefined);
    params = r.data;
  } else {
    for (const k of Object.keys(obj)) if (k !== gate.key) src.add([...path, k], `unknown key "${k}" in a ${gate.key} check`, { key: true });
    const r = gate.params.safeParse(obj[gate.key]);
    if (!r.success) return (addZodIssues(src, [...path, gate.key], r.error), undefined);
    params = r.data;
  }
  addTlsFileIssues(src, gate.stepLevel ? path : [...path, gate.key], params, dirname(src.file));
  const n = commonStepKeys.name.safeParse(name);
  if (!n.success) return (addZodIssues(src, [...path, 'name'], n.error), undefined);
  const t = commonStepKeys.timeout.safeParse(timeout);
  if (!t.success) return (addZodIssues(src, [...path, 'timeout'], t.error), undefined);
  const iv = commonStepKeys.interval.safeParse(interval);
  if (!iv.success) return (addZodIssues(src, [...path, 'interval'], iv.error), undefined);
  if (watch && gate.key === 'approve') return (src.add(path, 'approve cannot be a watch check'), undefined);
  return {
    intervalMs: watch ? (iv.data ?? 10_000) : undefined,
    name: n.data ?? gate.defaultName(params),
    gate: gate.key,
    params,
    perHost: JSON.stringify(raw).includes('{{') && usesHost(JSON.stringify(raw)),
    timeoutMs: t.data ?? Math.max(DEFAULT_GATE_TIMEOUT, ownLimit(params)),
    ...(skipOnHotfix ? { skipOnHotfix: true } : {}),
    ...(errorLimit !== undefined ? { errorLimit: errorLimit as number } : {}),
  };
}

/** `inventory: {command}` / `{provider, service}`: hosts that only running something can tell. */
function isRunInventory(data: Record<string, unknown>): boolean {
  return data.inventory !== undefined && data.inventory !== null && typeof data.inventory === 'object' && !Array.isArray(data.inventory);
}

function loadHosts(src: Source, data: Record<string, unknown>, dir: string, issues: ConfigIssue[], runInventory: boolean): Host[] | undefined {
  if (data.hosts !== undefined && data.inventory !== undefined) {
    src.add(['inventory'], 'give either hosts or inventory, not both', { key: true });
    return undefined;
  }
  // First pass over a playbook whose hosts come from a command or a registry: check the rest without them.
  if (!runInventory && isRunInventory(data)) return [];
  let hostsSrc = src;
  let raw: unknown = data.hosts;
  let base: Path = ['hosts'];
  if (data.inventory !== undefined) {
    const inv = typeof data.inventory === 'string' ? readSource(resolve(dir, data.inventory), issues) : inventorySource(src, data.inventory, dir, data.providers, issues);
    if (!inv) return undefined;
    issues.push(...inv.issues);
    if (inv.issues.length) return undefined;
    const invData = inv.data();
    issues.push(...inv.issues);
    hostsSrc = inv;
    if (invData && typeof invData === 'object' && !Array.isArray(invData) && 'hosts' in invData) {
      raw = (invData as { hosts: unknown }).hosts;
      base = ['hosts'];
    } else {
      raw = invData;
      base = [];
    }
  } else if (raw === undefined) {
    src.add([], 'no hosts: add `hosts:` or `inventory: FILE`');
    return undefined;
  }
  // Duplicate names are looked for in the raw list, so that they are reported along with any other problem of it.
  const seen = new Map<string, number>();
  (Array.isArray(raw) ? raw : []).forEach((h: unknown, i) => {
    const name = h && typeof h === 'object' ? (h as { name?: unknown }).name : undefined;
    if (typeof name !== 'string') return;
    if (seen.has(name)) hostsSrc.add([...base, i, 'name'], `duplicate host name "${name}" (first at hosts[${seen.get(name)}])`);
    else seen.set(name, i);
  });
  const r = hostsSchema.safeParse(raw);
  if (!r.success) {
    addZodIssues(hostsSrc, base, r.error);
    if (hostsSrc !== src) issues.push(...hostsSrc.issues.splice(0));
    return undefined;
  }
  if (r.data.length === 0) {
    hostsSrc.add(base, 'the host list is empty: a release needs at least one host');
  }
  if (hostsSrc !== src) issues.push(...hostsSrc.issues.splice(0));
  return r.data as Host[];
}

/** Deploy paths on the hosts: no `..` segment in `to`, and `release` names one directory (no traversal out of releases/). */
function checkDeployPaths(src: Source, path: Path, p: { to: string; release?: string }): void {
  if (p.to.split('/').includes('..')) src.add([...path, 'to'], `deploy.to: ${JSON.stringify(p.to)} contains a ".." segment; give the plain absolute path`);
  if (p.release !== undefined && (p.release.includes('/') || p.release.startsWith('.'))) src.add([...path, 'release'], `deploy.release: ${JSON.stringify(p.release)} must name one directory (no "/", no leading ".")`);
}

function hostHas(host: Host, name: string): boolean {
  if (name === 'host.port') return host.port !== undefined;
  const [, bag, ...path] = name.split('.');
  let cur: unknown = bag === 'vars' ? host.vars : host.labels;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object' || !(key in (cur as object))) return false;
    cur = (cur as Record<string, unknown>)[key];
  }
  return true;
}

/** Extra template names that particular places may use (beyond release/version/group/wave/host.*). */
const EXTRA_TEMPLATE_NAMES = ['service', 'blueVersion', 'greenVersion', 'blueWeight', 'greenWeight'];

/**
 * Reads and validates a playbook. Every problem is collected (not just the first) and thrown together as a
 * ConfigError whose lines read `FILE:LINE:COL: message`, FILE as the user wrote it (an inventory file beside it:
 * relative to the working directory when the playbook's path was relative). Nothing is contacted and nothing is run.
 */
export function loadPlaybook(path: string): Playbook {
  try {
    return loadResolved(path);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const shown = (f: string) => (f === resolve(path) ? path : isAbsolute(path) || !isAbsolute(f) ? f : relative(process.cwd(), f) || f);
    throw new ConfigError(err.issues.map((i) => ({ ...i, file: shown(i.file) })));
  }
}

function loadResolved(path: string, runInventory = true): Playbook {
  const file = resolve(path);
  const dir = dirname(file);
  const issues: ConfigIssue[] = [];
  const src = readSource(file, issues);
  if (!src) throw new ConfigError(issues);
  if (src.issues.length) throw new ConfigError(src.issues);
  const data = src.data();
  if (src.issues.length) throw new ConfigError(src.issues);
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError([{ file, line: 1, col: 1, message: 'a playbook is a YAML mapping with name, version, hosts and steps' }]);
  }
  const top = topSchema.safeParse(data);
  if (!top.success) addZodIssues(src, [], top.error);
  const d = data as Record<string, unknown>;

  // Hosts from a command or a registry: the rest of the playbook is checked first (without hosts), so that a broken
  // or hostile playbook never runs its inventory command or contacts its registry (issue #9: no command run).
  if (runInventory && isRunInventory(d)) loadResolved(path, false);
  const hosts = loadHosts(src, d, dir, issues, runInventory) ?? [];

  // Transport
  let transport = { type: 'local' } as Playbook['transport'];
  if (top.success) {
    const t = top.data.transport as { type: string };
    const type = findTransportType(t.type);
    if (!type) src.add(['transport', 'type'], `unknown transport type "${t.type}" (use local or ssh)`);
    else {
      const { type: _t, ...rest } = t;
      const r = type.options.safeParse(rest);
      if (!r.success) addZodIssues(src, ['transport'], r.error);
      else transport = { type: t.type, ...(r.data as object) };
    }
  }

  // State backend: its options are checked here, each problem at its position (the backend parses them when opened).
  if (top.success && top.data.state && top.data.state.type !== 'file') {
    const { type, ...rest } = top.data.state;
    const r = (type === 'etcd' ? etcdStateOptions : zookeeperStateOptions).safeParse(rest);
    if (!r.success) addZodIssues(src, ['state'], r.error);
  } else if (top.success && top.data.state) {
    for (const key of Object.keys(top.data.state)) if (key !== 'type') src.add(['state', key], `unknown key "${key}" in state (type: file takes no options)`, { key: true });
  }

  // Providers
  const providers: Playbook['providers'] = {};
  const roles = new Map<string, string>();
  for (const [name, raw] of Object.entries((d.providers as Record<string, unknown> | undefined) ?? {})) {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || typeof (raw as { type?: unknown }).type !== 'string') {
      src.add(['providers', name], `provider ${name} needs a type (e.g. type: dubbo-zookeeper)`);
      continue;
    }
    const { type, ...options } = raw as { type: string } & Record<string, unknown>;
    const pt = findProviderType(type);
    if (!pt) {
      src.add(['providers', name, 'type'], `unknown provider type "${type}"`);
      continue;
    }
    const r = pt.options.safeParse(options);
    if (!r.success) addZodIssues(src, ['providers', name], r.error);
    else addTlsFileIssues(src, ['providers', name], r.data, dir);
    providers[name] = { type, options: options };
    roles.set(name, pt.role);
  }

  const checkUses = (path: Path, key: string, uses: { provider: string; role: string }[]) => {
    for (const u of uses) {
      const role = roles.get(u.provider);
      if (role === undefined && !(u.provider in providers)) src.add([...path, key], `unknown provider "${u.provider}" (declare it under providers:)`);
      else if (role !== undefined && role !== u.role) src.add([...path, key], `provider "${u.provider}" is a ${role} provider; this needs a ${u.role} provider`);
    }
  };

  // Steps
  const steps: StepSpec[] = [];
  const rawSteps = Array.isArray(d.steps) ? d.steps : [];
  rawSteps.forEach((raw, i) => {
    const step = parseStep(src, ['steps', i], raw, i);
    if (!step) return;
    const action = findAction(step.action)!;
    checkUses(['steps', i], action.stepLevel ? '' : action.key, action.uses?.(step.params) ?? []);
    if (step.action === 'deploy') checkDeployPaths(src, ['steps', i, 'deploy'], step.params as { to: string; release?: string });
    if (steps.some((s) => s.name === step.name)) src.add(['steps', i], `duplicate step name "${step.name}": give one of them a name:`);
    steps.push(step);
  });

  // Gates
  const verify: GateSpec[] = [];
  (Array.isArray(d.verify) ? d.verify : []).forEach((raw, i) => {
    const gate = parseGate(src, ['verify', i], raw);
    if (!gate) return;
    checkUses(['verify', i], gate.gate, findGate(gate.gate)!.uses?.(gate.params) ?? []);
    verify.push(gate);
  });

  const watch: GateSpec[] = [];
  (Array.isArray(d.watch) ? d.watch : []).forEach((raw, i) => {
    const gate = parseGate(src, ['watch', i], raw, true);
    if (!gate) return;
    checkUses(['watch', i], gate.gate, findGate(gate.gate)!.uses?.(gate.params) ?? []);
    watch.push(gate);
  });

  // Switchover: release-level steps, run once on this machine.
  let switchover: Playbook['switchover'];
  const so = d.switchover as { at?: string; steps?: unknown[] } | undefined;
  if (top.success && top.data.switchover) {
    const soSteps: StepSpec[] = [];
    top.data.switchover.steps.forEach((raw, i) => {
      const step = parseStep(src, ['switchover', 'steps', i], raw, i);
      if (!step) return;
      if (usesHost(JSON.stringify((so?.steps ?? [])[i]))) src.add(['switchover', 'steps', i], 'switchover steps run once for the release: {{host.*}} is not available here');
      soSteps.push(step);
    });
    const pct = parseFloat(top.data.switchover.at);
    if (pct <= 0 || pct > 100) src.add(['switchover', 'at'], 'switchover.at must be between 0% (exclusive) and 100%');
    switchover = { atPercent: pct / 100, steps: soSteps };
  }

  // Notifications
  const notify: NotifySpec[] = [];
  (Array.isArray(d.notify) ? d.notify : []).forEach((raw, i) => {
    const r = notifyEntrySchema.safeParse(raw);
    if (!r.success) return addZodIssues(src, ['notify', i], r.error);
    const spec = toNotifySpec(r.data, i);
    if (notify.some((n) => n.name === spec.name)) src.add(['notify', i], `duplicate notify name "${spec.name}": give one of them a name:`);
    notify.push(spec);
  });

  // Waves
  let waves: WaveSpec = { size: { percent: 0.25 }, concurrency: 4, maxFailures: 0, pause: { kind: 'none' } };
  if (top.success) {
    const w = top.data.waves;
    let size: WaveSpec['size'];
    if (typeof w.size === 'number') size = { count: w.size };
    else {
      const pct = parseFloat(w.size);
      if (pct <= 0 || pct > 100) src.add(['waves', 'size'], 'waves.size must be between 0% (exclusive) and 100%');
      size = { percent: pct / 100 };
    }
    // A canary of the whole fleet is one wave only for a 1-host fleet (the usual canary: 1); on a larger fleet a 100%
    // canary leaves nothing to widen to (issue #9 lists it as bad input); more than the fleet cannot be "exactly N".
    if (w.canary !== undefined && hosts.length > 0 && w.canary > hosts.length) {
      src.add(['waves', 'canary'], `canary of ${w.canary} host(s) is more than the fleet (${hosts.length} hosts): use fewer`);
    } else if (w.canary !== undefined && hosts.length > 1 && w.canary === hosts.length) {
      src.add(['waves', 'canary'], `canary of ${w.canary} host(s) is the whole fleet (100%): it leaves nothing to widen to; use fewer`);
    }
    const pause: WaveSpec['pause'] = w.pause === 'none' ? { kind: 'none' } : w.pause === 'approve' ? { kind: 'approve' } : { kind: 'duration', ms: w.pause as number };
    waves = { canary: w.canary || undefined, size, concurrency: w.concurrency ?? 4, maxFailures: w.maxFailures, pause };
    if (w.mode === 'rolling') {
      if (w.by !== undefined) src.add(['waves', 'mode'], 'mode: rolling cannot be combined with label waves (by:)');
      if (w.every !== undefined) {
        if (typeof w.every === 'number') waves.size = { count: w.every };
        else {
          const pct = parseFloat(w.every);
          if (pct <= 0 || pct > 100) src.add(['waves', 'every'], 'waves.every must be between 0% (exclusive) and 100%');
          waves.size = { percent: pct / 100 };
        }
      }
      waves.concurrency = w.inFlight ?? w.concurrency ?? 4;
      waves.mode = 'rolling';
    } else if (w.inFlight !== undefined || w.every !== undefined) {
      src.add(['waves', w.inFlight !== undefined ? 'inFlight' : 'every'], 'inFlight and every belong to mode: rolling', { key: true });
    }
    // Label-based waves (src/plan/labels.ts): every host carries the label, and `order` names only values in use.
    if (w.by !== undefined) {
      const by = w.by;
      const rawHosts = Array.isArray(d.hosts) ? d.hosts : undefined;
      hosts.forEach((h, i) => {
        if (h.labels[by] !== undefined) return;
        if (rawHosts) src.add(['hosts', i], `host ${h.name} has no label "${by}" (waves.by: ${by}): add labels: { ${by}: ... }`);
        else src.add(['waves', 'by'], `host ${h.name} (from the inventory) has no label "${by}"`);
      });
      const values = new Set(hosts.map((h) => h.labels[by]).filter((v): v is string => v !== undefined));
      const seenOrder = new Set<string>();
      (w.order ?? []).forEach((v, i) => {
        if (seenOrder.has(v)) src.add(['waves', 'order', i], `waves.order lists ${by} "${v}" twice`);
        else if (hosts.length && !values.has(v)) src.add(['waves', 'order', i], `waves.order: no host has ${by} "${v}" (known: ${[...values].join(', ')})`);
        seenOrder.add(v);
      });
      if (w.order) {
        const unlisted = [...values].filter((v) => !seenOrder.has(v));
        if (unlisted.length) src.add(['waves', 'order'], `waves.order does not list ${by} ${unlisted.join(', ')}: every ${by} of the fleet needs its place`);
      }
      const sizeGiven = !!(d.waves && typeof d.waves === 'object' && 'size' in (d.waves as object));
      waves = { ...waves, by, order: w.order, maxPerZone: w.maxPerZone, sizeGiven };
    } else {
      if (w.order) src.add(['waves', 'order'], 'waves.order needs waves.by (the label it orders)', { key: true });
      if (w.maxPerZone) src.add(['waves', 'maxPerZone'], 'waves.maxPerZone needs waves.by (e.g. by: zone)', { key: true });
    }
  }

  // Routing rules (src/routing): release-level gray rules, published before wave 1 and widened after each wave.
  const routing = parseRouting(d.routing, providers, (p, m, o) => src.add(p, m, o), (p, e) => addZodIssues(src, p, e));

  // Hotfix policy: a documented faster path that always carries its reason.
  let hotfix: Playbook['hotfix'];
  if (top.success && top.data.policy === 'hotfix') {
    if (!top.data.reason) src.add(['policy'], 'policy: hotfix needs a reason: (why this release skips the normal waves); it goes into the journal');
    else hotfix = { reason: top.data.reason };
  } else if (top.success && top.data.reason !== undefined) {
    src.add(['reason'], 'reason: is the reason of policy: hotfix; without it, give the reason on the command line (run --reason)', { key: true });
  }

  // Templates: every {{name}} anywhere must be a known name (an unknown one is an error, not an empty string).
  for (const { path, value } of src.strings()) {
    for (const t of templateNames(value)) {
      if (!isKnownTemplateName(t.name, EXTRA_TEMPLATE_NAMES)) {
        src.add(path, `unknown template variable {{${t.name}}} (known: release, version, group, wave, host.name, host.address, host.port, host.vars.*, host.labels.*)`, { offset: t.offset });
      } else if (/^host\.(vars|labels)\./.test(t.name) || t.name === 'host.port') {
        // A per-host value must exist on every host, or the release would fail half-way on the first host without it.
        const missing = hosts.filter((h) => !hostHas(h, t.name)).map((h) => h.name);
        if (missing.length) src.add(path, `{{${t.name}}} is not set on host(s) ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}`, { offset: t.offset });
      }
    }
  }

  const all = [...issues, ...src.issues].sort((a, b) => (a.file === b.file ? a.line - b.line || a.col - b.col : a.file < b.file ? -1 : 1));
  if (all.length || !top.success) throw new ConfigError(all.length ? all : [{ file, line: 1, col: 1, message: 'invalid playbook' }]);
  const t = top.data;
  return {
    file,
    dir,
    name: t.name,
    version: t.version,
    group: t.group,
    hosts,
    transport,
    waves,
    providers,
    steps,
    verify,
    watch,
    onFailure: t.onFailure,
    state: t.state as Playbook['state'],
    ...(routing.length ? { routing } : {}),
    ...(hotfix ? { hotfix } : {}),
    notify,
    switchover,
  };
}
