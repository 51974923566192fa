import { z } from 'zod';
import { ProviderError } from '../errors.js';
import { fmtValue } from '../actions/wait-drained.js';
import { monitorContext } from './query.js';
import type { Gate, GateResult } from './types.js';

const params = z
  .object({
    monitor: z.string().min(1),
    /** A label for reports ("p99 latency"). */
    metric: z.string().min(1),
    green: z.string().min(1),
    blue: z.string().min(1),
    maxRatio: z.number().finite().positive(),
  })
  .strict();
export type CompareGateParams = z.infer<typeof params>;

/**
 * `- compare: {monitor, metric, green, blue, maxRatio}`: canary analysis — the new version (GREEN) may be at most
 * maxRatio times worse than the old one (BLUE). No data on either side fails: an absent baseline proves nothing.
 * Both 0 passes (nothing to compare, nothing worse); green > 0 against blue 0 fails (an infinite ratio).
 */
export const compareGate: Gate<CompareGateParams> = {
  doc: {
    options: {
      compare: 'The GREEN and BLUE queries and the ratio allowed.',
      'compare.monitor': 'Name of a monitor declared under providers:.',
      'compare.metric': 'A label for reports, e.g. p99 latency.',
      'compare.green': 'Query for the GREEN hosts.',
      'compare.blue': 'Query for the BLUE hosts.',
      'compare.maxRatio': 'GREEN / BLUE must be at most this (1.2 = 20% worse).',
    },
    summary: 'Canary analysis: the GREEN value divided by the BLUE value must stay at or below maxRatio (p99 latency, error ratio).',
    checkedAgainst: 'real Prometheus 2.42 (Debian)',
    example: '- name: latency\n  compare: { monitor: prom, metric: p99 latency, green: "…GREEN…", blue: "…BLUE…", maxRatio: 1.2 }',
  },
  key: 'compare',
  params,
  defaultName: (p) => `compare:${p.metric}`,
  uses: (p) => [{ provider: p.monitor, role: 'monitor' }],
  describe: (p) => `${p.metric}: GREEN/BLUE <= ${p.maxRatio} (${p.monitor}: ${p.green} / ${p.blue})`,
  async run(ctx, p): Promise<GateResult> {
    const monitor = ctx.monitor(p.monitor);
    const mctx = monitorContext(ctx);
    const read = async (expr: string): Promise<number | Error> => {
      try {
        return await monitor.value(mctx, ctx.render(expr));
      } catch (err) {
        if (ctx.signal.aborted) throw new ProviderError('gate aborted', false);
        return err as Error;
      }
    };
    const [green, blue] = await Promise.all([read(p.green), read(p.blue)]);
    const missing: string[] = [];
    if (green instanceof Error) missing.push(`GREEN: ${green.message.split('\n')[0]}`);
    if (blue instanceof Error) missing.push(`BLUE: ${blue.message.split('\n')[0]}`);
    if (missing.length || typeof green !== 'number' || typeof blue !== 'number') {
      const values: Record<string, number | string> = { maxRatio: p.maxRatio };
      if (typeof green === 'number') values.green = green;
      if (typeof blue === 'number') values.blue = blue;
      return { ok: false, unknown: true, observed: `${p.metric}: no data (${missing.join('; ')})`, values };
    }
    if (green < 0 || blue < 0) {
      return {
        ok: false,
        observed: `${p.metric}: negative reading (GREEN ${fmtValue(green)}, BLUE ${fmtValue(blue)}), no meaningful ratio`,
        values: { green, blue, maxRatio: p.maxRatio },
      };
    }
    const ratio = blue === 0 ? (green === 0 ? 1 : Infinity) : green / blue;
    const shown = Number.isFinite(ratio) ? fmtValue(ratio) : 'inf';
    const observed = `${p.metric}: GREEN ${fmtValue(green)} / BLUE ${fmtValue(blue)} = ${shown} ${ratio > p.maxRatio ? '>' : '<='} ${p.maxRatio}`;
    return { ok: ratio <= p.maxRatio, observed, values: { green, blue, ratio: Number.isFinite(ratio) ? ratio : 'inf', maxRatio: p.maxRatio } };
  },
};
