import { findAction } from '../actions/index.js';
import type { StepContext } from '../actions/types.js';
import { ProviderError } from '../errors.js';
import type { JournalRecord, StepPhase } from '../journal/records.js';
import type { Host, StepSpec } from '../playbook/types.js';
import { formatMs } from '../util/duration.js';
import { sleep, Tail } from './context.js';
import { now, type ReleaseContext } from './release.js';

type StepRecord = Extract<JournalRecord, { type: 'step' }>;

/**
 * The limits every step runs under — forward steps, undo, switchover steps and their undo, routing points alike.
 * This file is the only place that implements timeout, Ctrl-C, retries and backoff.
 */
export interface Limits {
  /** Per attempt; each attempt gets its own timer. Absent: no timeout (the work bounds itself). */
  timeoutMs?: number;
  /** The message of a timeout (default `timed out after 30s`). */
  timeoutMessage?: (ms: number) => string;
  /** Ctrl-C, or a wave's abort (a failing watch check): stops the attempt at once and is never retried. */
  signal: AbortSignal;
  /** Attempts after the first one (default 0). */
  retries?: number;
  /** Delay before attempt n+1 after attempt n failed (default: 0.5 s, 1 s, 2 s … up to 5 s). */
  backoff?: (attempt: number) => number;
  /** Whether another attempt can help (default: anything but a `ProviderError` marked not retryable). */
  retryable?: (err: Error) => boolean;
  /** Called before each attempt starts (journal `started`, events). */
  onAttempt?: (attempt: number) => Promise<void> | void;
  /** Called when an attempt failed and another one follows (after `onAttempt`'s record, before the backoff). */
  onRetry?: (attempt: number, err: Error) => Promise<void> | void;
}

/** 0.5 s, 1 s, 2 s … up to 5 s: retries are not spent while a registry restarts. */
export const defaultBackoff = (attempt: number): number => Math.min(500 * 2 ** (attempt - 1), 5000);

export const defaultRetryable = (err: Error): boolean => !(err instanceof ProviderError && !err.retryable);

/** The error an attempt ended with: the abort reason when it was cut short (timeout, Ctrl-C), else what it threw. */
function reasonOf(err: unknown, signal: AbortSignal): Error {
  if (signal.aborted && signal.reason instanceof Error) return signal.reason;
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * Runs `fn` under the limits: each attempt gets a fresh signal that aborts on its own timeout or on `limits.signal`,
 * and the attempt is abandoned at once when that signal fires (even if `fn` ignores it). Resolves with the first
 * successful attempt; rejects with the last attempt's error (a timeout or interrupt as a `ProviderError`).
 */
export async function withLimits<T>(fn: (signal: AbortSignal, attempt: number) => Promise<T>, limits: Limits): Promise<T> {
  const retries = limits.retries ?? 0;
  const outer = limits.signal;
  for (let attempt = 1; ; attempt++) {
    await limits.onAttempt?.(attempt);
    const ctl = new AbortController();
    const ms = limits.timeoutMs;
    const timer =
      ms === undefined ? undefined : setTimeout(() => ctl.abort(new ProviderError(limits.timeoutMessage?.(ms) ?? `timed out after ${formatMs(ms)}`)), ms);
    const onAbort = () => ctl.abort(new ProviderError(outer.reason instanceof Error ? outer.reason.message : 'interrupted', false));
    if (outer.aborted) onAbort();
    outer.addEventListener('abort', onAbort, { once: true });
    try {
      // Interrupted before this attempt began (Ctrl-C while the previous step finished): it fails without starting.
      if (ctl.signal.aborted) throw ctl.signal.reason;
      return await abortable(fn(ctl.signal, attempt), ctl.signal);
    } catch (err) {
      const reason = reasonOf(err, ctl.signal);
      const again = attempt <= retries && !outer.aborted && (limits.retryable ?? defaultRetryable)(reason);
      if (!again) throw reason;
      await limits.onRetry?.(attempt, reason);
      await sleep((limits.backoff ?? defaultBackoff)(attempt), outer).catch(() => undefined); // interrupted: the next attempt sees it
    } finally {
      if (timer) clearTimeout(timer);
      outer.removeEventListener('abort', onAbort);
    }
  }
}

/** Rejects as soon as the signal aborts, even if the work itself ignores the signal. */
export function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    // The work is abandoned: its own later failure must not surface as an unhandled rejection (that ends the process).
    work.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e) => (signal.removeEventListener('abort', onAbort), reject(e)),
    );
  });
}

const DEFAULT_POLL_MS = 1000;

/** Polls the action's check until it says done; an unknown state (the check threw) is never done. */
async function poll(
  ctx: StepContext,
  check: () => Promise<{ done: boolean; observed?: string }>,
  intervalMs: number,
  mask: (s: string) => string,
): Promise<void> {
  let last = '';
  for (;;) {
    try {
      const c = await abortable(check(), ctx.signal);
      if (c.done) return;
      last = c.observed ?? 'not yet';
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      last = `unknown: ${(err as Error).message}`;
    }
    ctx.log(`check: ${last}`);
    ctx.progress(mask(last));
    try {
      await sleep(intervalMs, ctx.signal);
    } catch (err) {
      const reason = ctx.signal.reason instanceof Error ? ctx.signal.reason.message : String(err);
      throw new ProviderError(`${reason}; last check: ${last}`);
    }
  }
}

/**
 * One host step, forward: do → (poll check until done) → done, under the step's limits; every attempt and its
 * outcome is journalled before the event that reports it. `signal` is the wave's (Ctrl-C or a failing watch check).
 * Returns false when the step failed (recorded, with its output's last lines).
 */
export async function runStep(rc: ReleaseContext, wave: number, host: Host, step: StepSpec, previous: unknown, signal: AbortSignal): Promise<boolean> {
  const action = findAction(step.action)!;
  const log = rc.log(host.name);
  const tail = new Tail(10);
  const at = { wave, host: host.name, step: step.name };
  const rec = (phase: StepPhase, extra: Partial<StepRecord>) => rc.record({ type: 'step', t: now(), ...at, phase, ...extra });
  let t0 = Date.now();
  let attempt = 0;
  try {
    await withLimits(
      async (attemptSignal) => {
        const ctx = rc.stepContext(wave, host, step, attemptSignal, t0 + step.timeoutMs, tail, previous);
        const data = await action.do(ctx, step.params);
        const saved = data === undefined ? null : data;
        if (action.check) {
          await rec('did', { attempt, data: saved });
          previous = saved;
          await poll(
            ctx,
            () => action.check!(ctx, step.params),
            step.intervalMs ?? DEFAULT_POLL_MS,
            (s) => rc.mask(s),
          );
        }
        const ms = Date.now() - t0;
        await rec('done', { attempt, data: saved, ms });
        rc.emit({ event: 'step.done', release: rc.release, ...at, ms });
        log.line(`--- ${step.name} done in ${formatMs(ms)} ---`);
      },
      {
        signal,
        timeoutMs: step.timeoutMs,
        retries: step.retries,
        onAttempt: async (n) => {
          attempt = n;
          t0 = Date.now();
          tail.clear();
          await rec('started', { attempt });
          rc.emit({ event: 'step.start', release: rc.release, ...at, attempt });
          log.line(`--- ${step.name} (attempt ${attempt}) ---`);
        },
        onRetry: (n, err) => {
          const error = rc.mask(err.message || String(err));
          log.line(`--- ${step.name} failed: ${error} ---`);
          rc.emit({ event: 'step.retry', release: rc.release, ...at, attempt: n, error });
        },
      },
    );
    return true;
  } catch (err) {
    const error = rc.mask((err as Error).message || String(err));
    log.line(`--- ${step.name} failed: ${error} ---`);
    const ms = Date.now() - t0;
    await rec('failed', { attempt, error, ms });
    const output = tail.get().map((l) => rc.mask(l));
    rc.emit({ event: 'step.failed', release: rc.release, ...at, ms, error, output: output.length ? output : undefined });
    return false;
  }
}

/**
 * Undoes one host step that took effect (rollback), under the same limits as its forward run. Returns the error
 * message when the undo failed (recorded), undefined when it was undone.
 */
export async function undoStep(rc: ReleaseContext, wave: number, host: Host, step: StepSpec, saved: unknown): Promise<string | undefined> {
  const action = findAction(step.action)!;
  const log = rc.log(host.name);
  const at = { wave, host: host.name, step: step.name };
  const t0 = Date.now();
  await rc.record({ type: 'step', t: now(), ...at, phase: 'undo-started' });
  rc.emit({ event: 'undo.start', release: rc.release, ...at });
  log.line(`--- undo ${step.name} ---`);
  try {
    await withLimits((signal) => action.undo!(rc.stepContext(wave, host, step, signal, Date.now() + step.timeoutMs, new Tail(), saved), step.params, saved), {
      signal: rc.deps.signal,
      timeoutMs: step.timeoutMs,
      timeoutMessage: (ms) => `undo timed out after ${formatMs(ms)}`,
      retries: step.retries,
    });
  } catch (err) {
    const error = rc.mask((err as Error).message);
    await rc.record({ type: 'step', t: now(), ...at, phase: 'undo-failed', error, ms: Date.now() - t0 });
    rc.emit({ event: 'undo.failed', release: rc.release, ...at, error });
    log.line(`--- undo ${step.name} failed: ${error} ---`);
    return error;
  }
  await rc.record({ type: 'step', t: now(), ...at, phase: 'undone', ms: Date.now() - t0 });
  rc.emit({ event: 'undo.done', release: rc.release, ...at, ms: Date.now() - t0 });
  return undefined;
}

/** A release-level (switchover) step's do or undo: once, on this machine, under the step's limits and Ctrl-C. */
export async function runReleaseStep(rc: ReleaseContext, wave: number, step: StepSpec, which: 'do' | 'undo'): Promise<void> {
  const action = findAction(step.action)!;
  await withLimits(
    (signal) => {
      const ctx = rc.releaseStepContext(wave, step, signal);
      return which === 'do' ? action.do(ctx, step.params) : action.undo!(ctx, step.params, null);
    },
    { signal: rc.deps.signal, timeoutMs: step.timeoutMs, retries: step.retries },
  );
}
