import { z } from 'zod';
import { pause } from '../util/pause.js';
import { ProviderError } from '../errors.js';
import { duration, formatMs } from '../util/duration.js';
import type { Action, StepContext } from './types.js';

const params = z
  .object({
    monitor: z.string().min(1),
    /** Monitor-specific: PromQL, a metric selector, a query_string, a JSON path. Templated per host. */
    query: z.string().default(''),
    /** A poll counts as drained when the value is <= below. */
    below: z.number().finite().default(0),
    stableFor: z.number().int().min(1).default(3),
    interval: duration.default('5s'),
    /** The wait's own limit; the step-level `timeout:` still applies on top of it in the engine. */
    timeout: duration.default('10m'),
  })
  .strict()
  .refine((p) => p.interval > 0, { message: 'interval must be more than 0', path: ['interval'] });
export type WaitDrainedParams = z.infer<typeof params>;

/** Numbers as people read them in a progress line: 0.0123, 12.3, 1234. */
export function fmtValue(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(Math.abs(v) >= 1 ? 4 : 3)));
}

function reasonOf(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).split('\n')[0]!;
}

/**
 * Polls the monitor until `stableFor` consecutive readings are <= `below`. A failed query, no data, NaN or a stale
 * sample is "unknown": it resets the streak (never counts as zero) and its reason is shown live and on timeout.
 */
async function waitDrained(ctx: StepContext, p: WaitDrainedParams): Promise<{ value: number; polls: number; ms: number }> {
  const monitor = ctx.monitor(p.monitor);
  const query = ctx.render(p.query);
  // `or vector(0)` turns "no series" (target down, label typo) into a zero that would pass: allowed, but said.
  if (/\bor\s+vector\s*\(\s*0\s*\)/.test(query)) {
    ctx.log(`waitDrained ${p.monitor}: warning: "or vector(0)" makes missing data read as 0; prefer a query that can be empty`);
  }
  const started = Date.now();
  // Stop at our own timeout, or a little earlier when the engine's step deadline (ms left) is nearer, so the
  // failure names the last reading instead of a bare "step timed out".
  // `deadline` is read as an epoch time (what the engine passes) when it is that large, else as ms left.
  let limit = p.timeout;
  if (Number.isFinite(ctx.deadline) && ctx.deadline > 0) {
    const left = ctx.deadline > 1e11 ? ctx.deadline - started : ctx.deadline;
    if (left < limit) limit = Math.max(0, left);
  }
  const deadline = started + limit;
  let streak = 0;
  let polls = 0;
  let last = 'no reading yet';
  let lastValue = NaN;
  for (;;) {
    if (ctx.signal.aborted) throw new ProviderError(`wait aborted (last: ${last})`, false);
    const pollStart = Date.now();
    polls++;
    try {
      const v = await monitor.value(ctx, query);
      lastValue = v;
      if (v <= p.below) streak++;
      else streak = 0;
      last = `value ${fmtValue(v)}`;
    } catch (err) {
      if (ctx.signal.aborted) throw new ProviderError(`wait aborted (last: ${last})`, false);
      streak = 0;
      last = `unknown (${reasonOf(err)})`;
    }
    const line = `${last} (${streak}/${p.stableFor} polls <= ${fmtValue(p.below)})`;
    ctx.progress(line);
    ctx.log(`waitDrained ${p.monitor} poll ${polls}: ${line}`);
    if (streak >= p.stableFor) return { value: lastValue, polls, ms: Date.now() - started };
    const next = pollStart + p.interval;
    if (next >= deadline) {
      throw new ProviderError(
        `traffic did not drain within ${formatMs(limit)} (${polls} polls, ${p.stableFor} consecutive <= ${fmtValue(p.below)} needed); last: ${last}`,
      );
    }
    await pause(Math.max(0, next - Date.now()), ctx.signal);
  }
}

/**
 * `- waitDrained: {monitor, query, below, stableFor, interval, timeout}`: before deploying, monitoring must show
 * that the host serves nothing. The whole polling loop runs in `do` (it needs its own interval, streak and
 * timeout), so the action has no `check`; it has no undo either (waiting changes nothing).
 */
export const waitDrainedAction: Action<WaitDrainedParams> = {
  doc: {
    options: {
      waitDrained: 'Which monitor to read and when the host counts as drained.',
      'waitDrained.monitor': 'Name of a monitor declared under providers: (prometheus, elasticsearch, metrics, http).',
      'waitDrained.query': "The monitor's query for this host (PromQL, metric selector, query_string, JSON path), a template; empty: the monitor's default.",
      'waitDrained.below': 'A poll counts as drained when the value is at most this.',
      'waitDrained.stableFor': 'Drained polls in a row needed.',
      'waitDrained.interval': 'Time between polls.',
      'waitDrained.timeout': "The wait's own limit; the step's timeout still applies on top of it.",
    },
    summary:
      "Polls a monitor until the host's traffic is at most `below` on `stableFor` polls in a row. A failed query, no data, NaN or a stale sample is never zero.",
    checkedAgainst: 'real Prometheus 2.42 (Debian); recorded Elasticsearch shapes',
    example:
      '- waitDrained: { monitor: prom, query: \'sum(rate(dubbo_requests_total{instance="{{host.address}}:20880"}[1m]))\', below: 0, stableFor: 3, interval: 5s, timeout: 10m }',
  },
  key: 'waitDrained',
  params,
  defaultName: (p) => `waitDrained:${p.monitor}`,
  uses: (p) => [{ provider: p.monitor, role: 'monitor' }],
  describe: (p, ctx) =>
    `wait until ${p.monitor} reads ${ctx.render(p.query) || '(default query)'} <= ${fmtValue(p.below)} on ${p.stableFor} polls in a row ` +
    `(every ${formatMs(p.interval)}, at most ${formatMs(p.timeout)})`,
  do: (ctx, p) => waitDrained(ctx, p),
  hasUndo: () => false,
};
