import { z } from 'zod';
import { pause } from '../util/pause.js';
import { ProviderError } from '../errors.js';
import type { Host } from '../playbook/types.js';
import type { ProviderContext } from '../providers/types.js';
import type { Transport } from '../transport/types.js';
import { duration, formatMs } from '../util/duration.js';
import { fmtValue } from '../actions/wait-drained.js';
import type { Gate, GateContext } from './types.js';

/** Gates have no transport; a monitor that reaches for one gets a clear error instead of a crash. */
const noTransport: Transport = {
  exec: () => Promise.reject(new ProviderError('monitors used by gates cannot run commands', false)),
  upload: () => Promise.reject(new ProviderError('monitors used by gates cannot copy files', false)),
  release: async () => {},
  close: async () => {},
};

/**
 * The ProviderContext a monitor needs, built from a gate's context. A wave-level gate has no host: a monitor
 * whose options use {{host.*}} then fails through render with "template value … is not available here".
 */
export function monitorContext(ctx: GateContext): ProviderContext {
  return {
    host: ctx.host ?? (undefined as unknown as Host),
    render: ctx.render,
    transport: noTransport,
    signal: ctx.signal,
    log: ctx.log,
  };
}

const params = z
  .object({
    monitor: z.string().min(1),
    expr: z.string().min(1),
    max: z.number().finite().optional(),
    min: z.number().finite().optional(),
    /** Keep within bounds this long (polling at `interval`); absent: one evaluation (also how `watch:` uses it). */
    for: duration.optional(),
    interval: duration.default('5s'),
  })
  .strict()
  .refine((p) => p.max !== undefined || p.min !== undefined, { message: 'give max, min or both' })
  .refine((p) => p.max === undefined || p.min === undefined || p.min <= p.max, { message: 'min is greater than max' })
  .refine((p) => p.interval > 0, { message: 'interval must be more than 0', path: ['interval'] });
export type QueryGateParams = z.infer<typeof params>;

function bounds(p: QueryGateParams): string {
  if (p.min !== undefined && p.max !== undefined) return `within [${fmtValue(p.min)}, ${fmtValue(p.max)}]`;
  return p.max !== undefined ? `<= ${fmtValue(p.max)}` : `>= ${fmtValue(p.min!)}`;
}

/** Why the value is out of bounds, or undefined when it is within them. */
function breach(v: number, p: QueryGateParams): string | undefined {
  if (p.max !== undefined && v > p.max) return `${fmtValue(v)} > max ${fmtValue(p.max)}`;
  if (p.min !== undefined && v < p.min) return `${fmtValue(v)} < min ${fmtValue(p.min)}`;
  return undefined;
}

/**
 * `- query: {monitor, expr, max, min, for, interval}`: the expression must read within bounds — once, or at every
 * poll for `for`. It fails at the first breach or the first unknown reading (no data is never "fine").
 */
export const queryGate: Gate<QueryGateParams> = {
  doc: {
    options: {
      query: 'The monitor query and its bounds.',
      'query.monitor': 'Name of a monitor declared under providers:.',
      'query.expr': "The monitor's query (PromQL …), a template.",
      'query.max': 'Fails above this value.',
      'query.min': 'Fails below this value.',
      'query.for': 'Keep within bounds this long (polling at interval); absent: one evaluation.',
      'query.interval': 'Time between evaluations during for.',
    },
    summary:
      'A monitor value (PromQL, metric, query_string …) that must stay within max/min, held for `for:` a while. A failed query or no data fails the check.',
    checkedAgainst: 'real Prometheus 2.42 (Debian)',
    example:
      '- name: error-rate\n  query: { monitor: prom, expr: "sum(rate(http_requests_total{group=\\"GREEN\\",code=~\\"5..\\"}[1m]))", max: 0.01, for: 2m }',
  },
  key: 'query',
  params,
  defaultName: (p) => `query:${p.monitor}`,
  uses: (p) => [{ provider: p.monitor, role: 'monitor' }],
  describe: (p) => `${p.monitor}: ${p.expr} ${bounds(p)}${p.for ? ` for ${formatMs(p.for)} (every ${formatMs(p.interval)})` : ''}`,
  async run(ctx, p) {
    const monitor = ctx.monitor(p.monitor);
    const mctx = monitorContext(ctx);
    const expr = ctx.render(p.expr);
    const limits: Record<string, number> = {};
    if (p.max !== undefined) limits.max = p.max;
    if (p.min !== undefined) limits.min = p.min;
    const started = Date.now();
    const until = started + (p.for ?? 0);
    let polls = 0;
    let lo = Infinity;
    let hi = -Infinity;
    for (;;) {
      if (ctx.signal.aborted) throw new ProviderError('gate aborted', false);
      const pollStart = Date.now();
      polls++;
      let v: number;
      try {
        v = await monitor.value(mctx, expr);
      } catch (err) {
        if (ctx.signal.aborted) throw new ProviderError('gate aborted', false);
        const reason = (err as Error).message.split('\n')[0];
        return {
          ok: false,
          unknown: true,
          observed: `unknown value (${reason}) after ${polls} poll${polls > 1 ? 's' : ''}`,
          values: { ...limits, polls, error: reason! },
        };
      }
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
      const bad = breach(v, p);
      if (bad) {
        const when = p.for ? ` at poll ${polls} (after ${formatMs(pollStart - started)})` : '';
        return { ok: false, observed: `${bad}${when}`, values: { value: v, ...limits, polls } };
      }
      ctx.progress(`${fmtValue(v)} ${bounds(p)}${p.for ? ` (${formatMs(Date.now() - started)}/${formatMs(p.for)})` : ''}`);
      // Done once a poll happened at or after the end of `for`; the last sleep is cut short to land on it.
      if (!p.for || pollStart >= until) {
        const range = polls > 1 ? `, range ${fmtValue(lo)}..${fmtValue(hi)} over ${polls} polls` : '';
        return { ok: true, observed: `${fmtValue(v)} ${bounds(p)}${range}`, values: { value: v, ...limits, polls, lowest: lo, highest: hi } };
      }
      await pause(Math.max(0, Math.min(pollStart + p.interval, until) - Date.now()), ctx.signal);
    }
  },
};
