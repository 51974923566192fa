import { describe, expect, it } from 'vitest';
import { waitDrainedAction } from '../../src/actions/wait-drained.js';
import { findAction } from '../../src/actions/index.js';
import { ProviderError } from '../../src/errors.js';
import type { Monitor } from '../../src/providers/types.js';
import { makeHost, makeStepContext } from '../helpers/contexts.js';
import { waitFor } from '../helpers/wait.js';

/** A monitor that answers from a script: numbers are readings, strings are failures. */
function scripted(script: (number | string)[], queries: string[] = []): Monitor & { calls: number } {
  const m = {
    calls: 0,
    async value(_ctx: unknown, query: string) {
      queries.push(query);
      const item = script[Math.min(m.calls++, script.length - 1)]!;
      if (typeof item === 'string') throw new ProviderError(item);
      return item;
    },
  };
  return m;
}

const params = (extra: object = {}) =>
  waitDrainedAction.params.parse({ monitor: 'prom', query: 'rps{instance="{{host.address}}"}', interval: '10ms', ...extra });

describe('waitDrained', () => {
  it('is registered under key waitDrained and uses its monitor with role monitor', () => {
    expect(findAction('waitDrained')).toBe(waitDrainedAction);
    const p = params();
    expect(waitDrainedAction.uses!(p)).toEqual([{ provider: 'prom', role: 'monitor' }]);
    expect(waitDrainedAction.defaultName(p)).toBe('waitDrained:prom');
    expect(p).toMatchObject({ below: 0, stableFor: 3, timeout: 600_000 });
    expect(waitDrainedAction.params.parse({ monitor: 'prom', query: 'x' }).interval).toBe(5000);
    expect(waitDrainedAction.params.safeParse({ monitor: 'prom', query: 'x', every: '1s' }).success).toBe(false);
    expect(waitDrainedAction.params.safeParse({ monitor: 'prom', query: 'x', stableFor: 0 }).success).toBe(false);
  });

  it('finishes only after stableFor consecutive polls <= below, rendering the query per host', async () => {
    const queries: string[] = [];
    const mon = scripted([5, 0, 0, 2, 0, 0, 0, 9], queries);
    const ctx = makeStepContext({ host: makeHost('a', '10.0.0.9'), monitors: { prom: mon } });
    const saved = (await waitDrainedAction.do(ctx, params())) as { value: number; polls: number };
    expect(mon.calls).toBe(7);
    expect(saved).toMatchObject({ value: 0, polls: 7 });
    expect(queries[0]).toBe('rps{instance="10.0.0.9"}');
    expect(ctx.progressLines).toEqual([
      'value 5 (0/3 polls <= 0)',
      'value 0 (1/3 polls <= 0)',
      'value 0 (2/3 polls <= 0)',
      'value 2 (0/3 polls <= 0)',
      'value 0 (1/3 polls <= 0)',
      'value 0 (2/3 polls <= 0)',
      'value 0 (3/3 polls <= 0)',
    ]);
  });

  it('a failed query / no data resets the streak and shows the reason; it never counts as zero', async () => {
    const mon = scripted([0, 0, 'no data (empty result)', 0, 0, 0]);
    const ctx = makeStepContext({ monitors: { prom: mon } });
    await waitDrainedAction.do(ctx, params());
    expect(mon.calls).toBe(6);
    expect(ctx.progressLines[2]).toBe('unknown (no data (empty result)) (0/3 polls <= 0)');
  });

  it('logs a warning when the query turns no data into 0 with "or vector(0)"', async () => {
    const ctx = makeStepContext({ monitors: { prom: scripted([0]) } });
    await waitDrainedAction.do(ctx, params({ query: 'sum(rate(x[1m])) or vector(0)' }));
    expect(ctx.lines[0]).toMatch(/warning: "or vector\(0\)" makes missing data read as 0/);
    const quiet = makeStepContext({ monitors: { prom: scripted([0]) } });
    await waitDrainedAction.do(quiet, params());
    expect(quiet.lines.some((l) => l.includes('warning'))).toBe(false);
  });

  it('uses the below threshold inclusively', async () => {
    const ctx = makeStepContext({ monitors: { prom: scripted([0.5, 0.01, 0.009, 0.01]) } });
    await waitDrainedAction.do(ctx, params({ below: 0.01 }));
    expect(ctx.progressLines.at(-1)).toBe('value 0.01 (3/3 polls <= 0.01)');
  });

  it('times out with the last value shown when traffic never drains', async () => {
    const ctx = makeStepContext({ monitors: { prom: scripted([42.123456]) } });
    const t0 = Date.now();
    const err = (await waitDrainedAction.do(ctx, params({ interval: '20ms', timeout: '150ms' })).catch((e: unknown) => e)) as ProviderError;
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.message).toMatch(/^traffic did not drain within 150ms \(\d+ polls, 3 consecutive <= 0 needed\); last: value 42.12$/);
    expect(Date.now() - t0).toBeLessThan(5000); // generous: it stops at its timeout
  });

  it('times out with the last error shown when the monitor keeps failing', async () => {
    const ctx = makeStepContext({ monitors: { prom: scripted(['POST http://prom/api/v1/query: ECONNREFUSED']) } });
    const err = (await waitDrainedAction.do(ctx, params({ interval: '20ms', timeout: '100ms' })).catch((e: unknown) => e)) as ProviderError;
    expect(err.message).toMatch(/last: unknown \(POST http:\/\/prom\/api\/v1\/query: ECONNREFUSED\)$/);
  });

  it("stops at the engine's step deadline when that is nearer", async () => {
    const ctx = makeStepContext({ monitors: { prom: scripted([3]) }, deadline: 80 });
    const err = (await waitDrainedAction.do(ctx, params({ interval: '20ms', timeout: '10m' })).catch((e: unknown) => e)) as ProviderError;
    expect(err.message).toMatch(/within 80ms/);
    // the engine passes an epoch time
    const ctx2 = makeStepContext({ monitors: { prom: scripted([3]) }, deadline: Date.now() + 100 });
    const err2 = (await waitDrainedAction.do(ctx2, params({ interval: '20ms', timeout: '10m' })).catch((e: unknown) => e)) as ProviderError;
    expect(err2.message).toMatch(/within (99|100)ms/);
  });

  it('abort ends the wait promptly, even in the middle of an interval', async () => {
    const ac = new AbortController();
    const ctx = makeStepContext({ monitors: { prom: scripted([7]) }, signal: ac.signal });
    const waiting = waitDrainedAction.do(ctx, params({ interval: '10s' })).catch((e: unknown) => e);
    // Abort once the first poll is in: the wait then sits in a 10 s interval.
    await waitFor(() => ctx.progressLines.length === 1, 'the first poll', { everyMs: 5 });
    const t0 = Date.now();
    ac.abort();
    const err = (await waiting) as ProviderError;
    expect(err.message).toMatch(/wait aborted \(last: value 7\)/);
    expect(err.retryable).toBe(false);
    expect(Date.now() - t0).toBeLessThan(5000); // generous: well inside the 10 s interval it was sleeping through
  });

  it('an unknown monitor name fails', async () => {
    await expect(waitDrainedAction.do(makeStepContext(), params())).rejects.toThrow(/no monitor provider named prom/);
  });

  it('describes itself for the plan with the rendered query', () => {
    const host = makeHost('a', '10.0.0.9');
    const text = waitDrainedAction.describe(params({ interval: '5s' }), {
      host,
      render: (t) => t.replace('{{host.address}}', host.address),
      renderShell: (t) => t,
    });
    expect(text).toBe('wait until prom reads rps{instance="10.0.0.9"} <= 0 on 3 polls in a row (every 5.0s, at most 10m0s)');
  });
});
