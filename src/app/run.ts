import { setMaxListeners } from 'node:events';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { EngineDeps } from '../engine/context.js';
import type { EngineEvent, EventSink } from '../engine/events.js';
import { ProviderSet } from '../engine/providers.js';
import { ReleaseContext } from '../engine/release.js';
import { rollbackHosts } from '../engine/rollback.js';
import { Engine, type Outcome } from '../engine/run.js';
import { EXIT, GraywaveError, LockHeldError } from '../errors.js';
import { Journal } from '../journal/journal.js';
import { currentActor, holderDeadHere, interruption } from '../journal/lock.js';
import type { ControlRequest } from '../journal/records.js';
import { createBackend } from '../journal/backends.js';
import type { StateBackend } from '../journal/backend.js';
import { replay, type RunState } from '../journal/replay.js';
import { buildPlan, type Plan } from '../plan/build.js';
import { loadPlaybook as loadPlaybookFile } from '../playbook/load.js';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { Playbook } from '../playbook/types.js';
import type { Transport } from '../transport/types.js';
import { jsonRenderer, plainRenderer } from '../render/lines.js';
import { listrRenderer } from '../render/listr.js';
import { createTransport } from '../transport/index.js';
import { Secrets } from '../util/secrets.js';
import { Notifier } from '../notify/notifier.js';

export type OutputMode = 'auto' | 'plain' | 'json' | 'silent';

export interface ReleaseRequest {
  file: string;
  /** Replaces `<playbook dir>/.graywave`; the release's state lives in `<stateDir>/<release>/`. */
  stateDir?: string;
  /** Skip the confirmation prompt (a terminal asks; off a terminal nothing ever waits for input). */
  yes?: boolean;
  output?: OutputMode;
  onEvent?: (e: EngineEvent) => void;
  /** Accept a journal written for a different plan (run: start over, archiving the old journal). */
  force?: boolean;
  reason?: string;
  /** Aborting halts the release cleanly at the next safe point (Ctrl-C). */
  signal?: AbortSignal;
  /** Use this transport instead of the playbook's (the in-process simulated fleet of `graywave demo --simulated`). */
  transport?: Transport;
  /** `run --hotfix`: the hotfix policy for this release (needs `reason`). */
  hotfix?: boolean;
}

/** The playbook with the hotfix policy applied (from `run --hotfix --reason`). */
export function withHotfix(pb: Playbook, reason: string | undefined): Playbook {
  if (pb.hotfix) return pb;
  if (!reason?.trim()) throw new GraywaveError('--hotfix needs --reason "..." (it is recorded in the journal and shown by plan)', EXIT.usage);
  return { ...pb, hotfix: { reason: reason.trim() } };
}

/**
 * Loads a playbook once per command: the confirmation prompt and open() need the same one, and a 10,000-host
 * playbook takes most of a second to parse and validate. Keyed on path, size and mtime, so an edit is re-read.
 */
const loaded = new Map<string, { key: string; pb: Playbook }>();
function loadPlaybook(file: string): Playbook {
  const path = resolve(file);
  let key: string;
  try {
    // The content itself is the key: cheap next to parsing, and exact (mtimes are too coarse for quick edits).
    key = createHash('sha1').update(readFileSync(path)).digest('hex');
  } catch {
    return loadPlaybookFile(file); // reports the problem with its position
  }
  const hit = loaded.get(path);
  if (hit && hit.key === key) return hit.pb;
  const pb = loadPlaybookFile(file);
  loaded.set(path, { key, pb });
  return pb;
}

function loadFor(req: ReleaseRequest): Playbook {
  const pb = loadPlaybook(req.file);
  return req.hotfix ? withHotfix(pb, req.reason) : pb;
}

export function releaseDir(pb: Playbook, stateDir?: string): string {
  return join(resolve(stateDir ?? join(pb.dir, '.graywave')), pb.name);
}

export function journalPath(pb: Playbook, stateDir?: string): string {
  return join(releaseDir(pb, stateDir), 'journal.jsonl');
}

const isTerminal = () => !!process.stdin.isTTY && !!process.stdout.isTTY;

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

function renderer(mode: OutputMode, plan: Plan, onEvent?: (e: EngineEvent) => void, rolling = false): { sink: EventSink; finish(): Promise<void> } {
  let base: { sink: EventSink; finish(): Promise<void> };
  const useMode = mode === 'auto' ? (process.stdout.isTTY ? 'listr' : 'plain') : mode;
  if (useMode === 'json') base = { sink: jsonRenderer(), finish: async () => undefined };
  else if (useMode === 'plain') base = { sink: plainRenderer(), finish: async () => undefined };
  else if (useMode === 'listr') base = listrRenderer(plan, undefined, { rolling });
  else base = { sink: () => undefined, finish: async () => undefined };
  return {
    sink: (e) => {
      base.sink(e);
      onEvent?.(e);
    },
    finish: () => base.finish(),
  };
}

interface Opened {
  pb: Playbook;
  plan: Plan;
  journal: Journal;
  state: RunState;
  unlock: () => Promise<void>;
  backend: StateBackend;
  deps: EngineDeps;
  finish(): Promise<void>;
}

/**
 * Loads, plans, locks and opens the journal, then builds the engine's dependencies.
 * The caller must call `finish()` (closes providers/transport, releases the lock, flushes the view).
 */
async function open(req: ReleaseRequest, command: string, mode: 'run' | 'existing'): Promise<Opened> {
  let pb = loadFor(req);
  let plan = buildPlan(pb);
  const dir = releaseDir(pb, req.stateDir);
  mkdirSync(dir, { recursive: true });
  const backend = createBackend(pb, dir);
  let unlockAsync: () => Promise<void>;
  try {
    unlockAsync = await backend.acquireLock({ command, reason: req.reason }, `graywave unlock ${req.file} --force`);
  } catch (err) {
    await backend.close();
    throw err;
  }
  const unlock = async () => {
    await unlockAsync().catch(() => undefined);
    await backend.close();
  };
  try {
    let journal = await backend.openJournal();
    let state = replay(journal.records);
    // A release started with `run --hotfix` keeps the hotfix plan on resume/rollback without the flag.
    const hf = journal.records.find((r) => r.type === 'run' && r.phase === 'start' && r.hotfix) as { reason?: string } | undefined;
    if (hf && mode === 'existing' && !pb.hotfix) {
      pb = withHotfix(pb, hf.reason ?? 'hotfix');
      plan = buildPlan(pb);
    }
    const header = state.header;
    if (mode === 'existing' && !header) {
      throw new GraywaveError(`no journal for release ${pb.name} in ${dir}: nothing to ${command}`, EXIT.usage, `start it with graywave run ${req.file}`);
    }
    if (header && header.planHash !== plan.planHash) {
      const finished = state.status === 'done' || state.status === 'rolled-back';
      if (mode === 'run' && (finished || req.force)) {
        journal = await archive(journal, backend);
        state = replay([]);
      } else if (!req.force) {
        throw new GraywaveError(
          `the journal in ${dir} was written for a different playbook (version ${header.version}, plan ${header.planHash}; now version ${pb.version}, plan ${plan.planHash}): hosts, steps or version changed`,
          EXIT.usage,
          `finish or roll back the old release with the old playbook, or pass --force to ${mode === 'run' ? 'start over' : 'use this playbook with the old journal'}`,
        );
      } else {
        await journal.append({ type: 'run', t: new Date().toISOString(), phase: 'forced', reason: `plan changed from ${header.planHash} to ${plan.planHash}`, by: currentActor() });
      }
    } else if (header && mode === 'run') {
      if (state.status === 'rolled-back' || (req.force && state.status !== 'done')) {
        journal = await archive(journal, backend);
        state = replay([]);
      } else if (state.status !== 'done') {
        throw new GraywaveError(
          `release ${pb.name} ${pb.version} is already in progress (${state.status}${state.reason ? `: ${state.reason}` : ''})`,
          EXIT.usage,
          `continue with graywave resume ${req.file}, undo with graywave rollback ${req.file}, or start over with graywave run ${req.file} --force`,
        );
      }
    }
    if (!state.header) {
      await journal.append({ type: 'header', v: 1, release: pb.name, version: pb.version, planHash: plan.planHash, playbook: pb.file, t: new Date().toISOString(), by: currentActor() });
      state = replay(journal.records);
    }
    const secrets = new Secrets(pb.dir);
    const transport = req.transport ?? createTransport(pb.transport, { dir: pb.dir, secrets });
    const providers = new ProviderSet(pb, { dir: pb.dir, secrets, transport });
    // Webhook notifications ride on the event sink: they never block or fail the release (src/notify).
    const notifier = pb.notify?.length
      ? new Notifier({ specs: pb.notify, journal, secrets, logDir: join(dir, 'logs'), dir: pb.dir, context: { version: pb.version, waves: plan.waves.length, waveHosts: (w) => plan.waves.find((x) => x.index === w)?.hosts ?? [] } })
      : undefined;
    const view = renderer(req.output ?? 'auto', plan, notifier ? (e) => (notifier.sink(e), req.onEvent?.(e)) : req.onEvent, pb.waves.mode === 'rolling');
    const signal = req.signal ?? new AbortController().signal;
    // Every in-flight step listens on it: with hundreds of hosts in flight that is not a leak.
    setMaxListeners(0, signal);
    const deps: EngineDeps = {
      playbook: pb,
      plan,
      journal,
      transport,
      providers,
      secrets,
      emit: view.sink,
      logDir: join(dir, 'logs'),
      signal,
      controls: () => backend.readControls(),
      approve: isTerminal() && (req.output ?? 'auto') !== 'json' ? (q) => confirm(q) : undefined,
    };
    return {
      pb,
      plan,
      journal,
      state,
      unlock,
      backend,
      deps,
      async finish() {
        await view.finish();
        await notifier?.flush();
        await providers.close();
        await transport.close();
        journal.close();
        await unlock();
      },
    };
  } catch (err) {
    await unlock();
    throw err;
  }
}

async function archive(journal: Journal, backend: StateBackend): Promise<Journal> {
  journal.close();
  await backend.archiveJournal();
  return backend.openJournal();
}

const exitFor: Record<Outcome, number> = { done: EXIT.ok, halted: EXIT.halted, paused: EXIT.paused, 'rolled-back': EXIT.ok };

async function confirmed(req: ReleaseRequest, question: string): Promise<boolean> {
  if (req.yes || !isTerminal()) return true;
  return confirm(question);
}

/** `graywave run`: starts a release (or reports one already done). Resolves to the exit code. */
export async function runRelease(req: ReleaseRequest): Promise<number> {
  const pb = loadFor(req);
  const plan = buildPlan(pb);
  if (!(await confirmed(req, `Release ${pb.name} ${pb.version} to ${pb.hosts.length} hosts in ${plan.waves.length} waves?`))) return EXIT.halted;
  const o = await open(req, 'run', 'run');
  try {
    // Under the hotfix policy the action carries the hotfix reason (the playbook's `reason:` when run without --reason).
    const hotfix = pb.hotfix ? { reason: req.reason ?? pb.hotfix.reason, detail: 'hotfix' } : { reason: req.reason };
    await o.journal.append({ type: 'operator', t: new Date().toISOString(), action: 'run', by: currentActor(), ...hotfix });
    if (o.state.status === 'done') {
      o.deps.emit({ event: 'run.done', release: o.pb.name, version: o.pb.version, hosts: o.pb.hosts.length, waves: o.plan.waves.length, ms: 0, failed: [] });
      return EXIT.ok;
    }
    const outcome = await new Engine(o.deps).run(false);
    return exitFor[outcome];
  } finally {
    await o.finish();
  }
}

/** `graywave resume`: continues from the exact step where each host stopped. */
export async function resumeRelease(req: ReleaseRequest): Promise<number> {
  const pb = loadPlaybook(req.file);
  if (!(await confirmed(req, `Resume release ${pb.name} ${pb.version}?`))) return EXIT.halted;
  const o = await open(req, 'resume', 'existing');
  try {
    await o.journal.append({ type: 'operator', t: new Date().toISOString(), action: 'resume', by: currentActor(), reason: req.reason });
    if (o.state.status === 'done') {
      o.deps.emit({ event: 'run.done', release: o.pb.name, version: o.pb.version, hosts: o.pb.hosts.length, waves: o.plan.waves.length, ms: 0, failed: [] });
      return EXIT.ok;
    }
    const outcome = await new Engine(o.deps).run(true);
    return exitFor[outcome];
  } finally {
    await o.finish();
  }
}

/** The waves a rollback touches: the current (newest started) wave, or every started wave with `all`. */
export function rollbackWaves(plan: Plan, state: RunState, all: boolean): number[] {
  const touched = plan.waves.filter((w) => w.hosts.some((h) => state.hosts.has(h))).map((w) => w.index);
  if (all) return touched;
  return touched.length ? [Math.max(...touched)] : [];
}

/** `graywave rollback [--all]`: undoes completed steps in reverse order, newest wave first. */
export async function rollbackRelease(req: ReleaseRequest & { all?: boolean; fast?: boolean }): Promise<number> {
  const pb = loadPlaybook(req.file);
  const all = req.all || req.fast;
  if (!(await confirmed(req, `Roll back ${all ? 'every wave' : 'the current wave'} of ${pb.name} ${pb.version}${req.fast ? ' (fast: all hosts at once)' : ''}?`))) return EXIT.halted;
  const o = await open(req, 'rollback', 'existing');
  try {
    if (o.state.status === 'frozen' && !req.force) {
      throw new GraywaveError(`release ${pb.name} is frozen (${o.state.reason ?? 'onFailure: freeze'}): it was kept as it is on purpose`, EXIT.usage, 'if rolling back is safe after all, pass --force');
    }
    const waves = rollbackWaves(o.plan, o.state, !!all);
    await o.journal.append({ type: 'operator', t: new Date().toISOString(), action: 'rollback', by: currentActor(), reason: req.reason, detail: `${req.fast ? 'fast' : all ? 'all' : 'current wave'}: wave(s) ${waves.join(', ')}` });
    const rc = new ReleaseContext(o.deps);
    const ok = await rollbackHosts(rc, { waves, undoSwitchover: !!all, fast: req.fast }).finally(() => rc.close());
    await o.journal.append({ type: 'run', t: new Date().toISOString(), phase: ok ? 'rolled-back' : 'halted', reason: ok ? `rolled back wave(s) ${waves.join(', ')}` : 'rollback incomplete: some undo steps failed' });
    return ok ? EXIT.ok : EXIT.halted;
  } finally {
    await o.finish();
  }
}

/** `graywave approve`: records a person's go for the wave that waits (or the newest finished wave). */
export async function approveRelease(req: ReleaseRequest): Promise<{ code: number; wave?: number }> {
  const pb = loadPlaybook(req.file);
  if (!(await confirmed(req, `Approve the next wave of ${pb.name} ${pb.version}?`))) return { code: EXIT.halted };
  const o = await open(req, 'approve', 'existing');
  try {
    // Only a wave with another one after it can wait for approval; a finished release has nothing to approve.
    const lastWave = o.plan.waves[o.plan.waves.length - 1]?.index ?? 0;
    const finished = o.state.status === 'done' || o.state.status === 'rolled-back';
    const waiting = finished ? undefined : [...o.state.waves.values()].filter((w) => w.done && !w.approved && w.wave < lastWave).sort((a, b) => b.wave - a.wave)[0];
    if (!waiting) throw new GraywaveError(`no finished wave of ${pb.name} waits for approval${finished ? ` (the release is ${o.state.status})` : ''}`, EXIT.usage);
    await o.journal.append({ type: 'wave', t: new Date().toISOString(), wave: waiting.wave, phase: 'approved', by: currentActor() });
    await o.journal.append({ type: 'operator', t: new Date().toISOString(), action: 'approve', by: currentActor(), reason: req.reason, detail: `wave ${waiting.wave + 1} may start` });
    return { code: EXIT.ok, wave: waiting.wave };
  } finally {
    await o.finish();
  }
}

/** `graywave unlock --force`: removes a stale lock (never a live holder's on this machine) and records who did it. */
export async function unlockRelease(req: { file: string; stateDir?: string; reason?: string }) {
  const pb = loadPlaybook(req.file);
  const backend = createBackend(pb, releaseDir(pb, req.stateDir));
  try {
    const holder = await backend.forceUnlock();
    if (holder) {
      const records = await backend.readRecords();
      if (records.length) {
        const journal = await backend.openJournal();
        await journal.append({ type: 'operator', t: new Date().toISOString(), action: 'unlock', by: currentActor(), reason: req.reason, detail: `removed the lock of pid ${holder.pid} on ${holder.host} (${holder.command})` });
        journal.close();
      }
    }
    return holder;
  } finally {
    await backend.close();
  }
}

function controlId(): string {
  return `${Date.now().toString(36)}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * `graywave abort` / `graywave promote`: with a live run holding the lock, the request goes through the state
 * backend and that run applies it within seconds (abort at the next step boundary). Without one, it is written
 * to the journal directly, and `graywave resume` honours it.
 */
export async function controlRelease(req: { file: string; stateDir?: string; reason?: string; action: 'abort' | 'promote'; mode?: 'gate' | 'full' }): Promise<{ code: number; message: string }> {
  const pb = loadPlaybook(req.file);
  const plan = buildPlan(pb);
  const backend = createBackend(pb, releaseDir(pb, req.stateDir));
  const request: ControlRequest = { id: controlId(), action: req.action, mode: req.mode, reason: req.reason, by: currentActor(), t: new Date().toISOString() };
  const what = req.action === 'abort' ? 'abort' : `promote${req.mode === 'full' ? ' --full' : ''}`;
  try {
    let unlock: (() => Promise<void>) | undefined;
    try {
      unlock = await backend.acquireLock({ command: what, reason: req.reason }, `graywave unlock ${req.file} --force`);
    } catch (err) {
      const holder = await backend.readLock();
      if (!(err instanceof LockHeldError) || !holder || holderDeadHere(holder)) throw err;
      await backend.postControl(request);
      return { code: EXIT.ok, message: `${what} sent to the running release (pid ${holder.pid} on ${holder.host}); it applies it within seconds` };
    }
    try {
      const records = await backend.readRecords();
      const state = replay(records);
      if (!state.header) throw new GraywaveError(`no journal for release ${pb.name}: nothing to ${what}`, EXIT.usage);
      if (state.status === 'done' || state.status === 'rolled-back') throw new GraywaveError(`release ${pb.name} is ${state.status}: nothing to ${what}`, EXIT.usage);
      const journal = await backend.openJournal();
      const t = new Date().toISOString();
      const detail = req.action === 'promote' ? (req.mode === 'full' ? 'full' : 'gate') : undefined;
      await journal.append({ type: 'operator', t, action: req.action, by: request.by, reason: req.reason, detail, id: request.id });
      let message: string;
      if (req.action === 'abort') {
        await journal.append({ type: 'run', t, phase: 'halted', reason: `aborted by ${request.by.user}@${request.by.host}${req.reason ? `: ${req.reason}` : ''}` });
        message = `release ${pb.name} marked halted; graywave resume continues it, graywave rollback undoes it`;
      } else {
        // Pass the gate the release stopped at: a failed verification, or an approval pause.
        const waves = [...state.waves.values()].filter((w) => w.done).sort((a, b) => b.wave - a.wave);
        const current = waves[0];
        if (current && !current.verified) await journal.append({ type: 'wave', t, wave: current.wave, phase: 'verified', detail: `promoted by ${request.by.user}@${request.by.host}` });
        if (current && !current.approved && current.wave < plan.waves.length) await journal.append({ type: 'wave', t, wave: current.wave, phase: 'approved', by: request.by });
        message = `promoted${req.mode === 'full' ? ' (every remaining gate passes)' : current ? ` past wave ${current.wave}` : ''}; continue with graywave resume ${req.file}`;
      }
      journal.close();
      return { code: EXIT.ok, message };
    } finally {
      await unlock();
    }
  } finally {
    await backend.close();
  }
}

/** `graywave status --wait`: blocks until the release is done (0), halted or interrupted (1), paused (4), or the timeout (5). */
export async function waitForRelease(req: { file: string; stateDir?: string; timeoutMs?: number; pollMs?: number }): Promise<number> {
  const pb = loadPlaybook(req.file);
  const backend = createBackend(pb, releaseDir(pb, req.stateDir));
  const deadline = Date.now() + (req.timeoutMs ?? 30 * 60_000);
  try {
    for (;;) {
      const state = replay(await backend.readRecords());
      if (state.status === 'done' || state.status === 'rolled-back') return EXIT.ok;
      if (state.status === 'halted' || state.status === 'frozen') return EXIT.halted;
      if (state.status === 'paused') return EXIT.paused;
      // "running" with nothing running it (killed): as good as halted, never a wait until the timeout.
      if (state.status === 'running' && interruption(state.status, await backend.readLock(), req.file)) return EXIT.halted;
      if (Date.now() >= deadline) return EXIT.timeout;
      await new Promise((r) => setTimeout(r, Math.min(req.pollMs ?? 1000, Math.max(0, deadline - Date.now()))));
    }
  } finally {
    await backend.close();
  }
}
