/** withLimits(): the one implementation of per-attempt timeout, Ctrl-C, retries, backoff and retryable. */
import { describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/errors.js';
import { defaultBackoff, withLimits } from '../../src/engine/step.js';
import { waitFor } from '../helpers/wait.js';

const never = (signal: AbortSignal) => new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new Error('saw abort'))));

describe('withLimits', () => {
  it('resolves with the first successful attempt', async () => {
    const seen: number[] = [];
    const r = await withLimits(
      async (_s, attempt) => {
        seen.push(attempt);
        if (attempt < 3) throw new Error(`attempt ${attempt} failed`);
        return 'ok';
      },
      { signal: new AbortController().signal, retries: 5, backoff: () => 0 },
    );
    expect(r).toBe('ok');
    expect(seen).toEqual([1, 2, 3]);
  });

  it("gives each attempt its own timeout (a slow first attempt does not eat the second one's time)", async () => {
    const attempts: number[] = [];
    const r = await withLimits(
      async (signal, attempt) => {
        attempts.push(attempt);
        if (attempt === 1) return never(signal);
        await new Promise((res) => setTimeout(res, 60)); // longer than what a shared timer would have left
        return 'second';
      },
      { signal: new AbortController().signal, timeoutMs: 100, retries: 1, backoff: () => 0 },
    );
    expect(r).toBe('second');
    expect(attempts).toEqual([1, 2]);
  });

  it('rejects with the timeout message (the abort reason, not what the work threw)', async () => {
    await expect(
      withLimits((s) => never(s), { signal: new AbortController().signal, timeoutMs: 20, timeoutMessage: (ms) => `undo timed out after ${ms}ms` }),
    ).rejects.toThrow('undo timed out after 20ms');
  });

  it('does not retry a ProviderError marked not retryable, nor what `retryable` refuses', async () => {
    let n = 0;
    await expect(
      withLimits(async () => (n++, Promise.reject(new ProviderError('bad config', false))), {
        signal: new AbortController().signal,
        retries: 3,
        backoff: () => 0,
      }),
    ).rejects.toThrow('bad config');
    expect(n).toBe(1);
    n = 0;
    await expect(
      withLimits(async () => (n++, Promise.reject(new Error('nope'))), {
        signal: new AbortController().signal,
        retries: 3,
        backoff: () => 0,
        retryable: () => false,
      }),
    ).rejects.toThrow('nope');
    expect(n).toBe(1);
  });

  it('Ctrl-C stops the attempt at once, even work that ignores the signal, and is never retried', async () => {
    const ctl = new AbortController();
    let n = 0;
    const p = withLimits(() => (n++, new Promise(() => undefined)), { signal: ctl.signal, retries: 3, backoff: () => 0 });
    await waitFor(() => n === 1, 'the attempt to start', { everyMs: 1 });
    ctl.abort(new Error('interrupted (Ctrl-C)'));
    await expect(p).rejects.toThrow('interrupted (Ctrl-C)');
    expect(n).toBe(1);
  });

  it('an attempt that would start after Ctrl-C fails without running', async () => {
    const ctl = new AbortController();
    ctl.abort(new Error('interrupted (Ctrl-C)'));
    let ran = false;
    await expect(withLimits(async () => ((ran = true), 1), { signal: ctl.signal })).rejects.toThrow('interrupted (Ctrl-C)');
    expect(ran).toBe(false);
  });

  it('Ctrl-C during the backoff ends the retries', async () => {
    const ctl = new AbortController();
    let n = 0;
    const p = withLimits(async () => (n++, Promise.reject(new Error('flaky'))), {
      signal: ctl.signal,
      retries: 5,
      backoff: () => 60_000,
      onRetry: () => void setTimeout(() => ctl.abort(new Error('interrupted (Ctrl-C)')), 5),
    });
    await expect(p).rejects.toThrow('interrupted (Ctrl-C)');
    expect(n).toBe(1); // the attempt after the cut-short backoff sees the abort and does not run
  });

  it('calls onAttempt before every attempt and onRetry between them, with the backoff in between', async () => {
    const log: string[] = [];
    const waits: number[] = [];
    await expect(
      withLimits(async (_s, a) => Promise.reject(new Error(`e${a}`)), {
        signal: new AbortController().signal,
        retries: 2,
        backoff: (a) => (waits.push(a), 1),
        onAttempt: (a) => void log.push(`attempt ${a}`),
        onRetry: (a, e) => void log.push(`retry ${a}: ${e.message}`),
      }),
    ).rejects.toThrow('e3');
    expect(log).toEqual(['attempt 1', 'retry 1: e1', 'attempt 2', 'retry 2: e2', 'attempt 3']);
    expect(waits).toEqual([1, 2]);
  });

  it('backs off 0.5 s, 1 s, 2 s … up to 5 s by default', () => {
    expect([1, 2, 3, 4, 5, 6].map(defaultBackoff)).toEqual([500, 1000, 2000, 4000, 5000, 5000]);
  });
});
