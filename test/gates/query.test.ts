import { describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/errors.js';
import { queryGate } from '../../src/gates/query.js';
import { findGate } from '../../src/gates/index.js';
import type { Monitor, ProviderContext } from '../../src/providers/types.js';
import { makeGateContext, makeHost } from '../helpers/contexts.js';
import { waitFor } from '../helpers/wait.js';

function scripted(script: (number | string)[], seen: string[] = []): Monitor & { calls: number } {
  const m = {
    calls: 0,
    async value(_ctx: ProviderContext, query: string) {
      seen.push(query);
      const item = script[Math.min(m.calls++, script.length - 1)]!;
      if (typeof item === 'string') throw new ProviderError(item);
      return item;
    },
  };
  return m;
}
const params = (extra: object) => queryGate.params.parse({ monitor: 'prom', expr: 'errors{group="{{group}}"}', interval: '10ms', ...extra });

describe('query gate', () => {
  it('one evaluation without `for` (usable as a watch check), rendering the expression', async () => {
    const seen: string[] = [];
    const mon = scripted([0.004], seen);
    const r = await queryGate.run(makeGateContext({ monitors: { prom: mon } }), params({ max: 0.01 }));
    expect(r).toEqual({ ok: true, observed: '0.004 <= 0.01', values: { value: 0.004, max: 0.01, polls: 1, lowest: 0.004, highest: 0.004 } });
    expect(seen).toEqual(['errors{group="GREEN"}']);
    expect(mon.calls).toBe(1);
    expect(findGate('query')).toBe(queryGate);
  });

  it('fails over max or under min, with the measured value', async () => {
    const over = await queryGate.run(makeGateContext({ monitors: { prom: scripted([0.034]) } }), params({ max: 0.01 }));
    expect(over).toMatchObject({ ok: false, observed: '0.034 > max 0.01', values: { value: 0.034, max: 0.01 } });
    const under = await queryGate.run(makeGateContext({ monitors: { prom: scripted([3]) } }), params({ min: 5 }));
    expect(under).toMatchObject({ ok: false, observed: '3 < min 5' });
  });

  it('with `for`, keeps polling and fails at the first breach', async () => {
    const mon = scripted([0.001, 0.002, 0.05, 0.001]);
    const r = await queryGate.run(makeGateContext({ monitors: { prom: mon } }), params({ max: 0.01, for: '10s' }));
    expect(r.ok).toBe(false);
    expect(r.observed).toMatch(/^0.05 > max 0.01 at poll 3 \(after \d+ms\)$/);
    expect(mon.calls).toBe(3);
  });

  it('with `for`, passes after staying within bounds for the whole time', async () => {
    const mon = scripted([0.001, 0.003, 0.002]);
    const ctx = makeGateContext({ monitors: { prom: mon } });
    const t0 = Date.now();
    const r = await queryGate.run(ctx, params({ max: 0.01, min: 0, for: '100ms', interval: '20ms' }));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
    expect(r.ok).toBe(true);
    expect(r.observed).toMatch(/^0.002 within \[0, 0.01\], range 0.001..0.003 over \d+ polls$/);
    expect(mon.calls).toBeGreaterThanOrEqual(5);
    expect(ctx.progressLines.length).toBe(mon.calls);
  });

  it('an unknown value fails the gate (no data is never "fine")', async () => {
    const r = await queryGate.run(makeGateContext({ monitors: { prom: scripted([0.001, 'no data (empty result)']) } }), params({ max: 0.01, for: '1s' }));
    expect(r).toMatchObject({ ok: false, observed: 'unknown value (no data (empty result)) after 2 polls', values: { error: 'no data (empty result)' } });
  });

  it('gives per-host monitors the host; wave-level gates fail clearly on {{host.*}}', async () => {
    const seenHosts: string[] = [];
    const mon: Monitor = {
      async value(ctx) {
        seenHosts.push(ctx.render('{{host.address}}'));
        return 0;
      },
    };
    await queryGate.run(
      makeGateContext({ host: makeHost('h', '10.0.0.4'), monitors: { m: mon } }),
      queryGate.params.parse({ monitor: 'm', expr: 'x', max: 1 }),
    );
    expect(seenHosts).toEqual(['10.0.0.4']);
    const r = await queryGate.run(makeGateContext({ monitors: { m: mon } }), queryGate.params.parse({ monitor: 'm', expr: 'x', max: 1 }));
    expect(r).toMatchObject({ ok: false, observed: expect.stringContaining('{{host.address}} is not available here') });
  });

  it('abort ends a long `for` promptly', async () => {
    const ac = new AbortController();
    const mon = scripted([0]);
    const running = queryGate.run(makeGateContext({ monitors: { prom: mon }, signal: ac.signal }), params({ max: 1, for: '1m', interval: '10s' }));
    running.catch(() => undefined);
    // Abort once the first poll is in: the gate then sits in a 10 s interval.
    await waitFor(() => mon.calls === 1, 'the first poll', { everyMs: 5 });
    const t0 = Date.now();
    ac.abort();
    await expect(running).rejects.toThrow('gate aborted');
    expect(Date.now() - t0).toBeLessThan(5000); // generous: well inside the interval
    expect(mon.calls).toBe(1);
  });

  it('params: needs max or min, min <= max, strict', () => {
    expect(queryGate.params.safeParse({ monitor: 'p', expr: 'x' }).success).toBe(false);
    expect(queryGate.params.safeParse({ monitor: 'p', expr: 'x', min: 2, max: 1 }).success).toBe(false);
    expect(queryGate.params.safeParse({ monitor: 'p', expr: 'x', max: 1, during: '1m' }).success).toBe(false);
    expect(queryGate.params.parse({ monitor: 'p', expr: 'x', max: 1, for: '2m' })).toMatchObject({ for: 120_000, interval: 5000 });
    expect(queryGate.uses!(queryGate.params.parse({ monitor: 'p', expr: 'x', max: 1 }))).toEqual([{ provider: 'p', role: 'monitor' }]);
  });
});
