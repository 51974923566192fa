import { existsSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { loadPlaybook } from './load.js';
import { cannotReadMessage } from './messages.js';
import { withoutOverrides, applyOverrides } from './overrides.js';
import type { ParseContext } from './parse/context.js';
import { parseGates } from './parse/gates.js';
import { addZodIssues } from './parse/issues.js';
import { parseProviders } from './parse/providers.js';
import { readSource } from './parse/read.js';
import type { Source } from './source.js';
import { parseState } from './parse/state.js';
import { parseSwitchover } from './parse/steps.js';
import { topSchema, wavesSchema } from './schema.js';
import { didYouMean } from './suggest.js';
import type { GateSpec, OnFailure, PauseSpec, Playbook, StepSpec } from './types.js';
import { parsePause } from '../plan/pause.js';

/**
 * Release trains (issue #18): a playbook with `apps:` instead of `hosts:`/`steps:` releases several applications
 * as one release. Each app's playbook stays a normal, runnable playbook; the train decides the waves (wave k takes
 * the k-th slice of every app), the order inside a wave (`after:`), the checks after each train wave and the
 * switchover (when GREEN carries `at` of EVERY app). This file reads and checks a train file; src/plan/train.ts
 * plans it and src/engine/train.ts runs it.
 */

export interface TrainApp {
  name: string;
  /** The app's playbook as loaded (its own hosts, transport, providers, steps). */
  playbook: Playbook;
  /** The app's playbook path as the train file gives it. */
  path: string;
  /** Apps whose part of each wave must be done before this one's starts. */
  after: string[];
  /** false: the app's deploy steps (`deploy:` steps and steps tagged `deploy`) are skipped; it still joins GREEN. */
  deploy: boolean;
}

export interface TrainWaves {
  canary?: number;
  size: { percent: number } | { count: number };
  /** Failed hosts allowed in one train wave over all apps (each app's own `waves.maxFailures` applies as well). */
  maxFailures?: number;
  pause: PauseSpec;
  afterCanary?: PauseSpec;
}

export interface Train {
  kind: 'train';
  file: string;
  dir: string;
  name: string;
  version: string;
  group: string;
  /** In file order. */
  apps: TrainApp[];
  /** App names in the order they start inside a wave (every app after the apps it waits for; file order otherwise). */
  order: string[];
  waves: TrainWaves;
  providers: Playbook['providers'];
  verify: GateSpec[];
  switchover?: { atPercent: number; steps: StepSpec[] };
  onFailure: OnFailure;
  state?: Playbook['state'];
}

const appName = topSchema.shape.name;

const appEntrySchema = z
  .object({
    name: appName,
    playbook: z.string().min(1),
    after: z.array(z.string().min(1)).default([]),
    deploy: z.boolean().default(true),
    /** This app's version in the train (default: its playbook's). */
    version: topSchema.shape.version.optional(),
  })
  .strict();

export const trainWavesSchema = wavesSchema.pick({ canary: true, size: true, pause: true }).extend({
  maxFailures: z.number().int().min(0).optional(),
});

/** A train file's top level (`graywave schema` publishes it beside the playbook's). */
export const trainSchema = z
  .object({
    name: topSchema.shape.name,
    version: topSchema.shape.version,
    group: topSchema.shape.group,
    apps: z.array(appEntrySchema).min(1, 'a train needs at least one app'),
    waves: trainWavesSchema.default({}),
    providers: topSchema.shape.providers,
    verify: topSchema.shape.verify,
    switchover: topSchema.shape.switchover,
    onFailure: topSchema.shape.onFailure,
    state: topSchema.shape.state,
  })
  .strict();

/** Shows an app file's issues with the path the user would type (relative to the working directory). */
function shownFile(trainPath: string, f: string): string {
  if (f === resolve(trainPath)) return trainPath;
  return isAbsolute(trainPath) || !isAbsolute(f) ? f : relative(process.cwd(), f) || f;
}

/**
 * Reads and checks a train file and every app's playbook. Every problem of the train file and of each app playbook
 * (with that file's name) is collected and thrown together as one ConfigError: an invalid app fails the whole train
 * before anything runs.
 */
export function loadTrain(path: string, parsed?: Source): Train {
  try {
    return loadTrainResolved(path, parsed);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new ConfigError(err.issues.map((i) => ({ ...i, file: shownFile(path, i.file) })));
  }
}

/** Loads a train file (or `parsed`, its parse already made: src/playbook/release-file.ts). */
function loadTrainResolved(path: string, parsed?: Source): Train {
  const file = resolve(path);
  const issues: ConfigIssue[] = [];
  const src = parsed ?? readSource(file, issues);
  if (!src) throw new ConfigError(issues);
  if (src.issues.length) throw new ConfigError(src.issues);
  applyOverrides(src); // --set version=… applies to the train (not to its apps)
  const d = src.data() as Record<string, unknown>;
  if (src.issues.length) throw new ConfigError(src.issues);
  if (d.hosts !== undefined || d.steps !== undefined || d.inventory !== undefined) {
    for (const k of ['hosts', 'steps', 'inventory'])
      if (d[k] !== undefined) src.add([k], `a train (a playbook with apps:) has no ${k}: each app's playbook names its own`, { key: true });
  }
  // The apps are checked on their own, so that a problem elsewhere in the file does not hide theirs.
  const top = trainSchema
    .extend({ apps: z.unknown() })
    .safeParse(Object.fromEntries(Object.entries(d).filter(([k]) => !['hosts', 'steps', 'inventory'].includes(k))));
  if (!top.success) addZodIssues(src, [], top.error);
  const entries = z.array(appEntrySchema).min(1, 'a train needs at least one app').safeParse(d.apps);
  if (!entries.success) addZodIssues(src, ['apps'], entries.error);
  const c: ParseContext = { src, dir: dirname(file), d, top: top.success ? (top.data as unknown as ParseContext['top']) : undefined, issues };
  const { providers, uses } = parseProviders(c);
  const verify = parseGates(c, uses, 'verify');
  const switchover = parseSwitchover(c);
  const state = parseState(c);
  const apps = entries.success ? readApps(c, entries.data) : [];
  const order = entries.success ? orderApps(c, entries.data) : [];
  const all = [...src.issues, ...issues].sort((a, b) =>
    a.file === b.file ? a.line - b.line || a.col - b.col : a.file === file ? -1 : b.file === file ? 1 : a.file < b.file ? -1 : 1,
  );
  if (all.length || !top.success || !entries.success) throw new ConfigError(all.length ? all : [{ file, line: 1, col: 1, message: 'invalid train' }]);
  const t = top.data;
  const { pause, afterCanary } = parsePause(t.waves.pause);
  const size = typeof t.waves.size === 'number' ? { count: t.waves.size } : { percent: parseFloat(t.waves.size) / 100 };
  return {
    kind: 'train',
    file,
    dir: dirname(file),
    name: t.name,
    version: t.version,
    group: t.group,
    apps,
    order,
    waves: {
      canary: t.waves.canary || undefined,
      size,
      pause,
      ...(afterCanary ? { afterCanary } : {}),
      ...(t.waves.maxFailures !== undefined ? { maxFailures: t.waves.maxFailures } : {}),
    },
    providers,
    verify,
    ...(switchover ? { switchover } : {}),
    onFailure: t.onFailure,
    ...(state ? { state } : {}),
  };
}

type AppEntry = z.infer<typeof appEntrySchema>;

/** Loads each app's playbook (relative to the train file); its problems keep its own file name. */
function readApps(c: ParseContext, entries: AppEntry[]): TrainApp[] {
  const apps: TrainApp[] = [];
  const seen = new Set<string>();
  entries.forEach((e, i) => {
    if (seen.has(e.name)) c.src.add(['apps', i, 'name'], `duplicate app name "${e.name}"`);
    seen.add(e.name);
    const file = resolve(c.dir, e.playbook);
    if (!existsSync(file)) {
      c.src.add(['apps', i, 'playbook'], cannotReadMessage(e.playbook, Object.assign(new Error('ENOENT'), { code: 'ENOENT' })));
      return;
    }
    try {
      // The train's --set applies to the train, not to each app's playbook.
      let pb = withoutOverrides(() => loadPlaybook(file));
      if (pb.hotfix)
        c.src.add(['apps', i, 'playbook'], `app ${e.name}: ${e.playbook} uses policy: hotfix, which a train does not take (release the hotfix on its own)`);
      if (pb.waves.mode === 'rolling')
        c.src.add(['apps', i, 'playbook'], `app ${e.name}: ${e.playbook} uses waves.mode: rolling; a train runs lock-step waves (the train's waves apply)`);
      if (e.version) pb = { ...pb, version: e.version };
      apps.push({ name: e.name, playbook: pb, path: e.playbook, after: e.after, deploy: e.deploy });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      c.issues.push(...err.issues);
      c.src.add(
        ['apps', i, 'playbook'],
        `app ${e.name}: ${e.playbook} has ${err.issues.length} problem${err.issues.length === 1 ? '' : 's'} (listed with its file name)`,
      );
    }
  });
  return apps;
}

/** The apps in start order: each after the apps it waits for, file order otherwise. Unknown names and cycles are errors. */
function orderApps(c: ParseContext, entries: AppEntry[]): string[] {
  const names = entries.map((e) => e.name);
  let ok = true;
  entries.forEach((e, i) =>
    e.after.forEach((a, j) => {
      if (a === e.name) ((ok = false), c.src.add(['apps', i, 'after', j], `app ${e.name} cannot wait for itself`));
      else if (!names.includes(a))
        ((ok = false), c.src.add(['apps', i, 'after', j], `unknown app "${a}" in after${didYouMean(a, names)} (apps: ${names.join(', ')})`));
    }),
  );
  if (!ok) return [];
  const order: string[] = [];
  const left = new Map(entries.map((e) => [e.name, new Set(e.after)]));
  while (left.size) {
    const ready = [...left.keys()].find((n) => [...left.get(n)!].every((a) => order.includes(a)));
    if (ready === undefined) {
      const cycle = findCycle(left);
      const i = entries.findIndex((e) => e.name === cycle[0]);
      c.src.add(
        ['apps', i, 'after'],
        `apps wait for each other in a cycle: ${cycle.join(' → ')} (an app's part of a wave starts after the apps in its after:)`,
      );
      return [];
    }
    order.push(ready);
    left.delete(ready);
  }
  return order;
}

/** One cycle among the apps left (each waits for one still left): followed from the first until a name repeats. */
function findCycle(left: Map<string, Set<string>>): string[] {
  const path: string[] = [];
  let at = [...left.keys()][0]!;
  while (!path.includes(at)) {
    path.push(at);
    at = [...left.get(at)!].find((a) => left.has(a))!;
  }
  return [...path.slice(path.indexOf(at)), at];
}

/** The steps of an app with `deploy: false`: without `deploy:` steps and steps tagged `deploy`. */
export function isDeployStep(s: StepSpec): boolean {
  return s.action === 'deploy' || !!s.tags?.includes('deploy');
}
