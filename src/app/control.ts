import { EXIT, GraywaveError, LockHeldError } from '../errors.js';
import { createBackend } from '../journal/backends.js';
import { currentActor, holderDeadHere, interruption } from '../journal/lock.js';
import type { ControlRequest } from '../journal/records.js';
import { replay } from '../journal/replay.js';
import { loadTarget } from '../plan/train.js';
import { releaseDir } from './paths.js';

/** `graywave unlock --force`: removes a stale lock (never a live holder's on this machine) and records who did it. */
export async function unlockRelease(req: { file: string; stateDir?: string; reason?: string }) {
  const { pb } = loadTarget(req.file);
  const backend = createBackend(pb, releaseDir(pb, req.stateDir));
  try {
    const holder = await backend.forceUnlock();
    if (holder) {
      const records = await backend.readRecords();
      if (records.length) {
        const journal = await backend.openJournal();
        await journal.append({
          type: 'operator',
          t: new Date().toISOString(),
          action: 'unlock',
          by: currentActor(),
          reason: req.reason,
          detail: `removed the lock of pid ${holder.pid} on ${holder.host} (${holder.command})`,
        });
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
export async function controlRelease(req: {
  file: string;
  stateDir?: string;
  reason?: string;
  action: 'abort' | 'promote';
  mode?: 'gate' | 'full';
}): Promise<{ code: number; message: string }> {
  const { pb, plan } = loadTarget(req.file);
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
      if (state.status === 'done' || state.status === 'rolled-back')
        throw new GraywaveError(`release ${pb.name} is ${state.status}: nothing to ${what}`, EXIT.usage);
      const journal = await backend.openJournal();
      const t = new Date().toISOString();
      const detail = req.action === 'promote' ? (req.mode === 'full' ? 'full' : 'gate') : undefined;
      await journal.append({ type: 'operator', t, action: req.action, by: request.by, reason: req.reason, detail, id: request.id });
      let message: string;
      if (req.action === 'abort') {
        await journal.append({
          type: 'run',
          t,
          phase: 'halted',
          reason: `aborted by ${request.by.user}@${request.by.host}${req.reason ? `: ${req.reason}` : ''}`,
        });
        message = `release ${pb.name} marked halted; graywave resume continues it, graywave rollback undoes it`;
      } else {
        // Pass the gate the release stopped at: a failed verification, or an approval pause.
        const waves = [...state.waves.values()].filter((w) => w.done).sort((a, b) => b.wave - a.wave);
        const current = waves[0];
        if (current && !current.verified)
          await journal.append({ type: 'wave', t, wave: current.wave, phase: 'verified', detail: `promoted by ${request.by.user}@${request.by.host}` });
        if (current && !current.approved && current.wave < plan.waves.length)
          await journal.append({ type: 'wave', t, wave: current.wave, phase: 'approved', by: request.by });
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

/**
 * `graywave status --wait`: blocks until the release is done or limited (0: a `--limit` run that finished its hosts
 * is a successful partial run), halted or interrupted (1), paused (4), or the timeout (5).
 */
export async function waitForRelease(req: { file: string; stateDir?: string; timeoutMs?: number; pollMs?: number }): Promise<number> {
  const { pb } = loadTarget(req.file);
  const backend = createBackend(pb, releaseDir(pb, req.stateDir));
  const deadline = Date.now() + (req.timeoutMs ?? 30 * 60_000);
  try {
    for (;;) {
      const state = replay(await backend.readRecords());
      if (state.status === 'done' || state.status === 'rolled-back' || state.status === 'limited') return EXIT.ok;
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
