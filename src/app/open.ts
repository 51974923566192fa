import { mkdirSync } from 'node:fs';
import { resolveLimit } from '../plan/limit.js';
import type { EngineDeps } from '../engine/context.js';
import type { EngineEvent } from '../engine/events.js';
import { EXIT, GraywaveError } from '../errors.js';
import type { StateBackend } from '../journal/backend.js';
import { createBackend } from '../journal/backends.js';
import type { Journal } from '../journal/journal.js';
import { currentActor } from '../journal/lock.js';
import { replay, type RunState } from '../journal/replay.js';
import { buildPlan, type Plan } from '../plan/build.js';
import type { Playbook } from '../playbook/types.js';
import type { Transport } from '../transport/types.js';
import type { Secrets } from '../util/secrets.js';
import { buildDeps, type OutputMode } from './deps.js';
import { decideJournal, type JournalDecision, type JournalMode } from './journal-policy.js';
import { releaseDir } from './paths.js';

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
  /** The secrets `transport` was made with (set together with it). */
  secrets?: Secrets;
  /** `run --hotfix`: the hotfix policy for this release (needs `reason`). */
  hotfix?: boolean;
  /** `--limit host,pattern,label=value`: only these hosts (src/plan/limit.ts); the rest stays pending. */
  limit?: string;
  /** `run --again`: run a release whose journal says done once more (its journal is archived). */
  again?: boolean;
  /** Run the preflight (src/app/preflight.ts) first; a problem stops before anything changes (exit 1). The CLI sets it unless --skip-preflight. */
  preflight?: boolean;
}

/** The playbook with the hotfix policy applied (from `run --hotfix --reason`). */
export function withHotfix(pb: Playbook, reason: string | undefined): Playbook {
  if (pb.hotfix) return pb;
  if (!reason?.trim()) throw new GraywaveError('--hotfix needs --reason "..." (it is recorded in the journal and shown by plan)', EXIT.usage);
  return { ...pb, hotfix: { reason: reason.trim() } };
}

export interface Opened {
  pb: Playbook;
  plan: Plan;
  journal: Journal;
  state: RunState;
  backend: StateBackend;
  deps: EngineDeps;
  /** Closes providers and transport, flushes the view, closes the journal and releases the lock. */
  finish(): Promise<void>;
}

/** The message of a refusal, with what to do instead. */
function refusal(
  why: Extract<JournalDecision, { kind: 'refuse' }>['why'],
  ctx: { pb: Playbook; plan: Plan; state: RunState; dir: string; file: string; command: string; mode: JournalMode },
): GraywaveError {
  const { pb, plan, state, dir, file, command, mode } = ctx;
  if (why === 'no-journal')
    return new GraywaveError(`no journal for release ${pb.name} in ${dir}: nothing to ${command}`, EXIT.usage, `start it with graywave run ${file}`);
  if (why === 'other-plan') {
    const h = state.header!;
    return new GraywaveError(
      `the journal in ${dir} was written for a different playbook (version ${h.version}, plan ${h.planHash}; now version ${pb.version}, plan ${plan.planHash}): hosts, steps or version changed`,
      EXIT.usage,
      `finish or roll back the old release with the old playbook, or pass --force to ${mode === 'run' ? 'start over' : 'use this playbook with the old journal'}`,
    );
  }
  return new GraywaveError(
    `release ${pb.name} ${pb.version} is already in progress (${state.status}${state.reason ? `: ${state.reason}` : ''})`,
    EXIT.usage,
    `continue with graywave resume ${file}, undo with graywave rollback ${file}, or start over with graywave run ${file} --force`,
  );
}

/**
 * Applies the journal policy (src/app/journal-policy.ts) to the journal a command found: refuses, archives it and
 * starts a new one, records a forced plan change, and writes the header of a new release. Returns the journal to use.
 */
export async function settleJournal(
  backend: StateBackend,
  journal: Journal,
  ctx: { req: ReleaseRequest; pb: Playbook; plan: Plan; dir: string; command: string; mode: JournalMode },
): Promise<{ journal: Journal; state: RunState }> {
  const { req, pb, plan, dir, command, mode } = ctx;
  let state = replay(journal.records);
  const again = req.again && mode === 'run' && state.status === 'done';
  const decision: JournalDecision = again ? { kind: 'archive' } : decideJournal(mode, state, plan.planHash, !!req.force);
  if (decision.kind === 'refuse') throw refusal(decision.why, { pb, plan, state, dir, file: req.file, command, mode });
  if (decision.kind === 'archive') {
    journal.close();
    await backend.archiveJournal();
    journal = await backend.openJournal();
    state = replay([]);
  } else if (decision.kind === 'force') {
    await journal.append({
      type: 'run',
      t: new Date().toISOString(),
      phase: 'forced',
      reason: `plan changed from ${state.header!.planHash} to ${plan.planHash}`,
      by: currentActor(),
    });
  }
  if (!state.header) {
    await journal.append({
      type: 'header',
      v: 1,
      release: pb.name,
      version: pb.version,
      planHash: plan.planHash,
      playbook: pb.file,
      t: new Date().toISOString(),
      by: currentActor(),
    });
    state = replay(journal.records);
  }
  return { journal, state };
}

/** Takes the lock; returns the function that gives it back and closes the backend. */
export async function lock(backend: StateBackend, req: ReleaseRequest, command: string): Promise<() => Promise<void>> {
  let release: () => Promise<void>;
  try {
    release = await backend.acquireLock({ command, reason: req.reason }, `graywave unlock ${req.file} --force`);
  } catch (err) {
    await backend.close();
    throw err;
  }
  return async () => {
    await release().catch(() => undefined);
    await backend.close();
  };
}

/**
 * Locks the release, opens its journal and applies the journal policy (src/app/journal-policy.ts), then builds the
 * engine's dependencies (src/app/deps.ts). `pb` is the playbook the command loaded (once). The caller must call
 * `finish()`.
 */
export async function openRelease(req: ReleaseRequest, pb: Playbook, command: string, mode: JournalMode): Promise<Opened> {
  let plan = buildPlan(pb);
  const dir = releaseDir(pb, req.stateDir);
  mkdirSync(dir, { recursive: true });
  const backend = createBackend(pb, dir);
  const unlock = await lock(backend, req, command);
  try {
    let journal = await backend.openJournal();
    // A release started with `run --hotfix` keeps the hotfix plan on resume/rollback without the flag.
    const hf = journal.records.find((r) => r.type === 'run' && r.phase === 'start' && r.hotfix) as { reason?: string } | undefined;
    if (hf && mode === 'existing' && !pb.hotfix) {
      pb = withHotfix(pb, hf.reason ?? 'hotfix');
      plan = buildPlan(pb);
    }
    const settled = await settleJournal(backend, journal, { req, pb, plan, dir, command, mode });
    journal = settled.journal;
    const state = settled.state;
    const built = buildDeps(pb, plan, journal, {
      dir,
      backend,
      output: req.output,
      onEvent: req.onEvent,
      signal: req.signal,
      transport: req.transport,
      secrets: req.secrets,
      file: req.file,
      stateDir: req.stateDir,
    });
    if (req.limit) built.deps.limit = resolveLimit(pb.hosts, req.limit);
    const opened = journal;
    return {
      pb,
      plan,
      journal,
      state,
      backend,
      deps: built.deps,
      async finish() {
        await built.finish();
        opened.close();
        await unlock();
      },
    };
  } catch (err) {
    await unlock();
    throw err;
  }
}
