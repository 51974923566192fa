import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { EngineDeps } from '../engine/context.js';
import type { EngineEvent, EventSink } from '../engine/events.js';
import { ProviderSet } from '../engine/providers.js';
import { rollbackHosts } from '../engine/rollback.js';
import { Engine, type Outcome } from '../engine/run.js';
import { EXIT, GraywaveError } from '../errors.js';
import { Journal } from '../journal/journal.js';
import { acquireLock, currentActor } from '../journal/lock.js';
import { replay, type RunState } from '../journal/replay.js';
import { buildPlan, type Plan } from '../plan/build.js';
import { loadPlaybook } from '../playbook/load.js';
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

function renderer(mode: OutputMode, plan: Plan, onEvent?: (e: EngineEvent) => void): { sink: EventSink; finish(): Promise<void> } {
  let base: { sink: EventSink; finish(): Promise<void> };
  const useMode = mode === 'auto' ? (process.stdout.isTTY ? 'listr' : 'plain') : mode;
  if (useMode === 'json') base = { sink: jsonRenderer(), finish: async () => undefined };
  else if (useMode === 'plain') base = { sink: plainRenderer(), finish: async () => undefined };
  else if (useMode === 'listr') base = listrRenderer(plan);
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
  unlock: () => void;
  deps: EngineDeps;
  finish(): Promise<void>;
}

/**
 * Loads, plans, locks and opens the journal, then builds the engine's dependencies.
 * The caller must call `finish()` (closes providers/transport, releases the lock, flushes the view).
 */
async function open(req: ReleaseRequest, command: string, mode: 'run' | 'existing'): Promise<Opened> {
  const pb = loadPlaybook(req.file);
  const plan = buildPlan(pb);
  const dir = releaseDir(pb, req.stateDir);
  mkdirSync(dir, { recursive: true });
  const unlock = acquireLock(join(dir, 'lock'), command, req.reason, `graywave unlock ${req.file} --force`);
  try {
    const path = join(dir, 'journal.jsonl');
    let journal = Journal.open(path);
    let state = replay(journal.records);
    const header = state.header;
    if (mode === 'existing' && !header) {
      throw new GraywaveError(`no journal for release ${pb.name} in ${dir}: nothing to ${command}`, EXIT.usage, `start it with graywave run ${req.file}`);
    }
    if (header && header.planHash !== plan.planHash) {
      const finished = state.status === 'done' || state.status === 'rolled-back';
      if (mode === 'run' && (finished || req.force)) {
        journal = archive(journal, path);
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
        journal = archive(journal, path);
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
      ? new Notifier({ specs: pb.notify, journal, secrets, logDir: join(dir, 'logs'), context: { version: pb.version, waves: plan.waves.length, waveHosts: (w) => plan.waves.find((x) => x.index === w)?.hosts ?? [] } })
      : undefined;
    const view = renderer(req.output ?? 'auto', plan, notifier ? (e) => (notifier.sink(e), req.onEvent?.(e)) : req.onEvent);
    const signal = req.signal ?? new AbortController().signal;
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
      approve: isTerminal() && (req.output ?? 'auto') !== 'json' ? (q) => confirm(q) : undefined,
    };
    return {
      pb,
      plan,
      journal,
      state,
      unlock,
      deps,
      async finish() {
        await view.finish();
        await notifier?.flush();
        await providers.close();
        await transport.close();
        journal.close();
        unlock();
      },
    };
  } catch (err) {
    unlock();
    throw err;
  }
}

function archive(journal: Journal, path: string): Journal {
  journal.close();
  if (existsSync(path)) renameSync(path, path.replace(/\.jsonl$/, `.${Date.now()}.jsonl`));
  return Journal.open(path);
}

const exitFor: Record<Outcome, number> = { done: EXIT.ok, halted: EXIT.halted, paused: EXIT.paused, 'rolled-back': EXIT.ok };

async function confirmed(req: ReleaseRequest, question: string): Promise<boolean> {
  if (req.yes || !isTerminal()) return true;
  return confirm(question);
}

/** `graywave run`: starts a release (or reports one already done). Resolves to the exit code. */
export async function runRelease(req: ReleaseRequest): Promise<number> {
  const pb = loadPlaybook(req.file);
  const plan = buildPlan(pb);
  if (!(await confirmed(req, `Release ${pb.name} ${pb.version} to ${pb.hosts.length} hosts in ${plan.waves.length} waves?`))) return EXIT.halted;
  const o = await open(req, 'run', 'run');
  try {
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
export async function rollbackRelease(req: ReleaseRequest & { all?: boolean }): Promise<number> {
  const pb = loadPlaybook(req.file);
  if (!(await confirmed(req, `Roll back ${req.all ? 'every wave' : 'the current wave'} of ${pb.name} ${pb.version}?`))) return EXIT.halted;
  const o = await open(req, 'rollback', 'existing');
  try {
    const waves = rollbackWaves(o.plan, o.state, !!req.all);
    const ok = await rollbackHosts(o.deps, o.state, { waves, undoSwitchover: !!req.all });
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
    const waiting = [...o.state.waves.values()].filter((w) => w.done && !w.approved).sort((a, b) => b.wave - a.wave)[0];
    if (!waiting) throw new GraywaveError(`no finished wave of ${pb.name} waits for approval`, EXIT.usage);
    await o.journal.append({ type: 'wave', t: new Date().toISOString(), wave: waiting.wave, phase: 'approved', by: currentActor() });
    return { code: EXIT.ok, wave: waiting.wave };
  } finally {
    await o.finish();
  }
}
