import { readFileSync, unlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { dirname } from 'node:path';
import { LockHeldError, GraywaveError } from '../errors.js';
import type { Actor } from './records.js';

export interface LockInfo extends Actor {
  startedAt: string;
  command: string;
  reason?: string;
}

export function currentActor(): Actor {
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    /* no passwd entry (containers): keep $USER */
  }
  return { user, host: hostname(), pid: process.pid };
}

export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie still answers kill(0): look at its state where /proc exists.
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

/** The holder ran on this machine and its process is gone (a holder on another machine cannot be checked from here). */
export function holderDeadHere(holder: Actor): boolean {
  return holder.host === hostname() && !isPidAlive(holder.pid);
}

/** `unlock --force`: refuses a holder that is still running on this machine (another process than this one). */
export function refuseLiveHolder(holder: LockInfo | undefined): void {
  if (holder && holder.host === hostname() && holder.pid !== process.pid && isPidAlive(holder.pid)) {
    throw new LockHeldError(
      `pid ${holder.pid} (${holder.command}) is still running and holds the lock`,
      `stop it first (Ctrl-C lets it halt cleanly), then unlock`,
    );
  }
}

/**
 * A journal that says "running" while nothing runs it: the lock is gone (a cluster lock dies with its holder) or its
 * holder's process, on this machine, is dead (kill -9, a crash, a reboot). Undefined when the release may really be
 * running (a live holder, or one on another machine, which cannot be checked from here).
 */
export function interruption(status: string, lock: LockInfo | undefined, file: string): string | undefined {
  if (status !== 'running') return undefined;
  if (!lock) return `nothing is running it any more (its process ended without a halt record): continue with \`graywave resume ${file}\``;
  if (!holderDeadHere(lock)) return undefined;
  return `pid ${lock.pid} that ran it (${lock.command} since ${lock.startedAt}) is no longer running: clear its lock with \`graywave unlock ${file} --force\`, then \`graywave resume ${file}\``;
}

export function readLock(path: string): LockInfo | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
  } catch {
    return undefined;
  }
}

/** Takes the release lock (O_EXCL create). Another holder — alive or not — is never taken over silently. */
export function acquireLock(path: string, command: string, reason?: string, unlockHint = 'graywave unlock PLAYBOOK --force'): () => void {
  mkdirSync(dirname(path), { recursive: true });
  const info: LockInfo = { ...currentActor(), startedAt: new Date().toISOString(), command, reason };
  try {
    writeFileSync(path, JSON.stringify(info) + '\n', { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new GraywaveError(`cannot create lock ${path}: ${(err as Error).message}`);
    const holder = readLock(path);
    if (!holder) throw new LockHeldError(`release is locked (${path}, unreadable)`, `if no graywave is running for it: ${unlockHint}`);
    const who = `pid ${holder.pid} on ${holder.host} (user ${holder.user}, ${holder.command} since ${holder.startedAt}${holder.reason ? `, reason: ${holder.reason}` : ''})`;
    if (holderDeadHere(holder)) {
      throw new LockHeldError(
        `release is locked by ${who}, which is no longer running (stale lock)`,
        `check nothing else is releasing it, then: ${unlockHint}`,
      );
    }
    throw new LockHeldError(`release is locked by ${who}`, `wait for it to finish; if it is gone: ${unlockHint}`);
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const now = readLock(path);
    if (now && now.pid === info.pid && now.host === info.host) {
      try {
        unlinkSync(path);
      } catch {
        /* already gone */
      }
    }
  };
}

/** `graywave unlock --force`: removes the lock and says whose it was. Refuses a live holder on this host. */
export function forceUnlock(path: string): LockInfo | undefined {
  const holder = readLock(path);
  refuseLiveHolder(holder);
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return undefined;
  }
  return holder;
}
