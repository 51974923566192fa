import { describe, expect, it } from 'vitest';
import { ProviderError } from '../../src/errors.js';
import { compareGate } from '../../src/gates/compare.js';
import { findGate } from '../../src/gates/index.js';
import type { Monitor } from '../../src/providers/types.js';
import { makeGateContext } from '../helpers/contexts.js';

/** Answers by query text: a number, or a string to fail with. */
function byQuery(answers: Record<string, number | string>): Monitor {
  return {
    async value(_ctx, q) {
      const a = answers[q];
      if (a === undefined) throw new ProviderError(`unexpected query ${q}`);
      if (typeof a === 'string') throw new ProviderError(a);
      return a;
    },
  };
}
const params = compareGate.params.parse({ monitor: 'prom', metric: 'p99 latency', green: 'p99{group="{{group}}"}', blue: 'p99{group="BLUE"}', maxRatio: 1.2 });
const run = (answers: Record<string, number | string>) => compareGate.run(makeGateContext({ monitors: { prom: byQuery(answers) } }), params);

describe('compare gate', () => {
  it('passes when GREEN/BLUE <= maxRatio (templates rendered)', async () => {
    const r = await run({ 'p99{group="GREEN"}': 0.22, 'p99{group="BLUE"}': 0.2 });
    expect(r).toEqual({
      ok: true,
      observed: 'p99 latency: GREEN 0.22 / BLUE 0.2 = 1.1 <= 1.2',
      values: { green: 0.22, blue: 0.2, ratio: 0.22 / 0.2, maxRatio: 1.2 },
    });
    expect(findGate('compare')).toBe(compareGate);
  });

  it('fails when GREEN is worse than maxRatio times BLUE', async () => {
    const r = await run({ 'p99{group="GREEN"}': 0.5, 'p99{group="BLUE"}': 0.2 });
    expect(r).toMatchObject({ ok: false, observed: 'p99 latency: GREEN 0.5 / BLUE 0.2 = 2.5 > 1.2', values: { ratio: 2.5 } });
  });

  it('fails when either side has no data, naming it', async () => {
    const r = await run({ 'p99{group="GREEN"}': 0.2, 'p99{group="BLUE"}': 'no data (empty result)' });
    expect(r).toMatchObject({ ok: false, observed: 'p99 latency: no data (BLUE: no data (empty result))', values: { green: 0.2 } });
  });

  it('both 0 passes; GREEN above a BLUE of 0 fails', async () => {
    expect((await run({ 'p99{group="GREEN"}': 0, 'p99{group="BLUE"}': 0 })).ok).toBe(true);
    const r = await run({ 'p99{group="GREEN"}': 0.01, 'p99{group="BLUE"}': 0 });
    expect(r).toMatchObject({ ok: false, observed: 'p99 latency: GREEN 0.01 / BLUE 0 = inf > 1.2', values: { ratio: 'inf' } });
  });

  it('params are strict and maxRatio positive', () => {
    expect(compareGate.params.safeParse({ monitor: 'p', metric: 'm', green: 'g', blue: 'b', maxRatio: 0 }).success).toBe(false);
    expect(compareGate.params.safeParse({ monitor: 'p', metric: 'm', green: 'g', blue: 'b', maxRatio: 1, for: '1m' }).success).toBe(false);
  });
});
