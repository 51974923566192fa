import { z } from 'zod';
import { ProviderError } from '../errors.js';
import { fmtValue } from '../actions/wait-drained.js';
import type { RangeSeries } from '../providers/types.js';
import { duration, formatMs, parseDuration } from '../util/duration.js';
import { pause } from '../util/pause.js';
import { monitorContext } from './query.js';
import { hodgesLehmann, mannWhitney, median, rateTest, spreadTest, type RateTest } from './stats.js';
import type { Gate, GateContext, GateResult } from './types.js';

/**
 * `- judge: {...}`: automated canary analysis. GREEN is compared with BLUE over a time window, metric by metric,
 * with rank statistics (value metrics) or an exact rate test (count metrics); a weighted score turns the metrics'
 * classifications into pass / marginal / fail / inconclusive, and the verdict carries its evidence.
 *
 * Measuring (Prometheus range queries) and judging are separate: `judgeVerdict(params, measurements)` is a pure
 * function, so the benchmark and the tests judge simulated measurements exactly as a release judges real ones.
 */

/** One-sided significance level of each test (as Kayenta's 98% confidence); the intervals shown are the matching two-sided 98%. */
export const ALPHA = 0.01;
export const CONFIDENCE = 1 - 2 * ALPHA;
/**
 * Count metrics: a p-value between ALPHA and this is suggestive but not conclusive (5 errors of 1,000 against 0 of
 * 1,000: p = 0.028). Such a metric is inconclusive — not a pass — so that a person looks at it.
 */
export const SUGGESTIVE = 0.05;
/** A spread (MAD) wider than BLUE's by more than this factor, significantly, makes a tail metric "high". */
export const SPREAD_FACTOR = 1.5;
/** A value repeated unchanged this long is a frozen (stale) series: Prometheus's default lookback delta. */
export const STALE_MS = 5 * 60_000;

const tolerance = z.union([
  z.number().finite().nonnegative(),
  z
    .string()
    .regex(/^\s*\d+(\.\d+)?\s*%\s*$/, 'a percentage like 10% (relative to BLUE) or a number (in the metric unit)')
    .transform((s) => ({ percent: Number(s.replace('%', '').trim()) })),
]);

const metric = z
  .object({
    name: z.string().min(1),
    /** `value` (default): samples compared by rank; `count`: events out of a total, an exact rate comparison. */
    kind: z.enum(['value', 'count']).default('value'),
    green: z.string().min(1),
    blue: z.string().min(1),
    greenTotal: z.string().min(1).optional(),
    blueTotal: z.string().min(1).optional(),
    bad: z.enum(['increase', 'decrease', 'either']).default('increase'),
    tolerance: tolerance.default('5%'),
    critical: z.boolean().default(false),
    weight: z.number().finite().positive().default(1),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.kind === 'count' && (!m.greenTotal || !m.blueTotal))
      ctx.addIssue({ code: 'custom', message: 'kind: count needs greenTotal and blueTotal (the events are counted out of them)' });
    if (m.kind === 'value' && (m.greenTotal || m.blueTotal)) ctx.addIssue({ code: 'custom', message: 'greenTotal/blueTotal go with kind: count' });
  });

const params = z
  .object({
    monitor: z.string().min(1),
    /** The last `window` of the wave; absent: from the time the wave's hosts were restored until now. */
    window: duration.optional(),
    step: duration.default('15s'),
    minSamples: z.number().int().min(1).default(50),
    metrics: z.array(metric).min(1),
    pass: z.number().min(0).max(100).default(90),
    marginal: z.number().min(0).max(100).default(70),
  })
  .strict()
  .refine((p) => p.marginal <= p.pass, { message: 'marginal is greater than pass', path: ['marginal'] })
  .refine((p) => p.step > 0, { message: 'step must be more than 0', path: ['step'] })
  .refine((p) => new Set(p.metrics.map((m) => m.name)).size === p.metrics.length, { message: 'metric names must be unique', path: ['metrics'] });
export type JudgeParams = z.infer<typeof params>;
export type JudgeMetric = JudgeParams['metrics'][number];
/** What the schema accepts (before defaults): for the benchmark and tests. */
export type JudgeInput = z.input<typeof params>;

// ---------------------------------------------------------------------------------------------------------------
// Measurements

export type { Dropped } from './evidence.js';

/** One query's usable samples over the window. */
export interface Samples {
  values: number[];
  series: number;
  dropped: Dropped;
  /** The query failed (the message); then values is empty. */
  error?: string;
  /**
   * Count metrics: the values that are summed — the samples `countStepMs` apart (from the window's start), so that
   * overlapping increase() windows count every event once. Absent: every value.
   */
  counted?: number[];
  /** The series (labels) and time of each counted value: pairs events with their totals for the dispersion estimate. */
  countedKeys?: string[];
}

export interface MetricMeasurement {
  name: string;
  green: Samples;
  blue: Samples;
  greenTotal?: Samples;
  blueTotal?: Samples;
}

export interface JudgeMeasurements {
  start: number;
  end: number;
  stepMs: number;
  metrics: MetricMeasurement[];
}

/**
 * The usable samples of a range result: every finite value of every series; NaN/±Inf, missing steps and frozen
 * repeats are dropped and counted. `frozen`: drop values repeated unchanged for longer than STALE_MS (not for
 * counts, where a steady 0 is a real reading).
 */
export function collectSamples(series: RangeSeries[], w: { start: number; end: number; stepMs: number }, frozen = true, countStepMs?: number): Samples {
  const dropped: Dropped = { nan: 0, gaps: 0, stale: 0 };
  const values: number[] = [];
  const counted: number[] = [];
  const countedKeys: string[] = [];
  // Range results have samples at start + k·step. The counted ones: the last sample of the window and those whole
  // count steps before it whose own range still lies within the window.
  const last = w.start + Math.floor((w.end - w.start) / w.stepMs + 1e-9) * w.stepMs;
  const counts = (t: number) => {
    if (countStepMs === undefined || t - countStepMs < w.start - 2) return false;
    const k = (last - t) / countStepMs;
    return Math.abs(k - Math.round(k)) * countStepMs < 2;
  };
  const steps = Math.floor((w.end - w.start) / w.stepMs + 1e-9) + 1;
  for (const s of series) {
    const key = JSON.stringify(Object.entries(s.labels).sort(([a], [b]) => (a < b ? -1 : 1)));
    const inWindow = s.samples.filter((p) => p.t >= w.start - 1 && p.t <= w.end + 1);
    dropped.gaps += Math.max(0, steps - inWindow.length);
    let runStart = 0;
    let last: number | undefined;
    for (const p of inWindow) {
      if (!Number.isFinite(p.v)) {
        dropped.nan++;
        last = undefined;
        continue;
      }
      if (p.v !== last) ((last = p.v), (runStart = p.t));
      if (frozen && p.v !== 0 && p.t - runStart > STALE_MS) {
        dropped.stale++;
        continue;
      }
      values.push(p.v);
      if (counts(p.t)) (counted.push(p.v), countedKeys.push(`${key}@${p.t}`));
    }
  }
  return countStepMs !== undefined ? { values, series: series.length, dropped, counted, countedKeys } : { values, series: series.length, dropped };
}

/** The longest range selector (`[1m]`, `[5m:30s]`) in a PromQL expression, in ms; 0 without one. */
export function longestRange(expr: string): number {
  let longest = 0;
  for (const m of expr.matchAll(/\[\s*([0-9][0-9a-z.]*)\s*(?::[^\]]*)?\]/gi)) longest = Math.max(longest, parseDuration(m[1]!) ?? 0);
  return longest;
}

/**
 * Count metrics are summed over the window. `increase(x[1m])` read every 15 s counts each event four times, so only
 * the samples a whole range apart are summed (every event once); all samples count towards minSamples.
 */
export function countStep(m: JudgeMetric, stepMs: number): number {
  const range = Math.max(stepMs, ...[m.green, m.blue, m.greenTotal ?? '', m.blueTotal ?? ''].map(longestRange));
  return Math.ceil(range / stepMs - 1e-9) * stepMs;
}

// ---------------------------------------------------------------------------------------------------------------
// The verdict (pure)

export type { Classification, Verdict, GroupEvidence, MetricEvidence, JudgeEvidence } from './evidence.js';
import type { Dropped, GroupEvidence, JudgeEvidence, MetricEvidence, Verdict } from './evidence.js';

function fmtTolerance(t: JudgeMetric['tolerance']): string {
  return typeof t === 'number' ? fmtValue(t) : `${fmtValue(t.percent)}%`;
}

const pct = (r: number) => (Number.isFinite(r) ? `${r >= 0 ? '+' : ''}${fmtValue(Math.round(r * 1000) / 10)}%` : r > 0 ? '+inf' : '-inf');
const fmtP = (p: number) => (p < 0.0001 ? 'p<0.0001' : `p=${fmtValue(Number(p.toPrecision(2)))}`);

function group(s: Samples, count: boolean): GroupEvidence {
  const g: GroupEvidence = { samples: s.values.length, series: s.series, dropped: s.dropped };
  if (!count && s.values.length) {
    const sorted = [...s.values].sort((a, b) => a - b);
    g.median = median(sorted);
    g.quantiles = Array.from({ length: 21 }, (_, i) => sorted[Math.min(sorted.length - 1, Math.round((i / 20) * (sorted.length - 1)))]!);
  }
  return g;
}

const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);

type Base = Omit<MetricEvidence, 'classification' | 'failed' | 'why'>;

/** A count metric: events out of totals, the exact rate test (scaled for over-dispersion). */
function judgeCount(
  m: JudgeMetric,
  meas: MetricMeasurement,
  base: Base,
  inconclusive: (why: string) => MetricEvidence,
  worseUp: boolean,
  worseDown: boolean,
): MetricEvidence {
  const xg = Math.round(sum(meas.green.counted ?? meas.green.values));
  const xb = Math.round(sum(meas.blue.counted ?? meas.blue.values));
  const ng = Math.round(sum(meas.greenTotal!.counted ?? meas.greenTotal!.values));
  const nb = Math.round(sum(meas.blueTotal!.counted ?? meas.blueTotal!.values));
  base.green = { ...base.green, events: xg, total: ng, median: ng ? xg / ng : undefined };
  base.blue = { ...base.blue, events: xb, total: nb, median: nb ? xb / nb : undefined };
  if (ng <= 0 || nb <= 0) return inconclusive(`no traffic: GREEN total ${ng}, BLUE total ${nb}; a rate needs a total`);
  if (xg > ng || xb > nb) return inconclusive(`more events than the total (GREEN ${xg}/${ng}, BLUE ${xb}/${nb}): check the queries`);
  // Errors come in bursts: counts vary more than a Poisson count would. The exact test then sees the evidence
  // of φ times fewer events (quasi-Poisson scaling; φ = Pearson χ² / degrees of freedom over the counted windows).
  const phi = dispersion([
    [meas.green, meas.greenTotal!],
    [meas.blue, meas.blueTotal!],
  ]);
  base.green.dispersion = phi;
  const scaled = (v: number) => Math.round(v / phi);
  const tol = typeof m.tolerance === 'number' ? m.tolerance : m.tolerance.percent / 100;
  const rHigh = typeof m.tolerance === 'number' ? 1 + tol / Math.max(xb / nb, Number.EPSILON) : 1 + tol;
  const rLow = typeof m.tolerance === 'number' ? Math.max(Number.EPSILON, 1 - tol / Math.max(xb / nb, Number.EPSILON)) : 1 / (1 + tol);
  const high = rateTest(scaled(xg), scaled(ng), scaled(xb), scaled(nb), 'greater', rHigh, CONFIDENCE);
  const low = rateTest(scaled(xg), scaled(ng), scaled(xb), scaled(nb), 'less', rLow, CONFIDENCE);
  high.ratio = xb === 0 ? (xg === 0 ? NaN : Infinity) : xg / ng / (xb / nb);
  const shift = {
    estimate: high.ratio,
    lower: high.lower,
    upper: high.upper,
    relative: high.ratio - 1,
    relativeLower: high.lower - 1,
    relativeUpper: high.upper - 1,
    level: CONFIDENCE,
  };
  const rates = `GREEN ${xg}/${ng} (${fmtRate(xg / ng)}) vs BLUE ${xb}/${nb} (${fmtRate(xb / nb)})${phi > 1.05 ? `, bursty (dispersion ${fmtValue(Number(phi.toPrecision(2)))})` : ''}`;
  const ci = `${Math.round(CONFIDENCE * 100)}% CI of the ratio ${fmtRatio(high.lower)}..${fmtRatio(high.upper)}`;
  const none =
    xg === 0 && xb === 0
      ? `; no events on either side (GREEN's rate is below ${fmtRate(1 - Math.pow(ALPHA, 1 / ng))} at ${Math.round((1 - ALPHA) * 100)}% confidence)`
      : '';
  return countOutcome(m, base, { high, low, shift, rates, ci, none }, worseUp, worseDown);
}

type Shift = NonNullable<MetricEvidence['shift']>;

/** A count metric's classification from its two one-sided rate tests: a shift beyond the tolerance, a suggestive one in the bad direction (never a pass), or a pass. */
function countOutcome(
  m: JudgeMetric,
  base: Base,
  t: { high: RateTest; low: RateTest; shift: Shift; rates: string; ci: string; none: string },
  worseUp: boolean,
  worseDown: boolean,
): MetricEvidence {
  const { high, low, shift, rates, ci, none } = t;
  if (high.p < ALPHA) {
    return {
      ...base,
      classification: 'high',
      failed: worseUp,
      shift,
      p: high.p,
      why: `${rates}: GREEN's rate is ${fmtRatio(high.ratio)} BLUE's, above the tolerance ${base.tolerance} (${ci}, ${fmtP(high.p)})${worseUp ? '' : ', which is not bad here'}`,
    };
  }
  if (low.p < ALPHA) {
    return {
      ...base,
      classification: 'low',
      failed: worseDown,
      shift,
      p: low.p,
      why: `${rates}: GREEN's rate is ${fmtRatio(high.ratio)} BLUE's, below the tolerance ${base.tolerance} (${ci}, ${fmtP(low.p)})${worseDown ? '' : ', an improvement'}`,
    };
  }
  if (worseUp && high.p < SUGGESTIVE) {
    return {
      ...base,
      classification: 'inconclusive',
      failed: true,
      shift,
      p: high.p,
      why: `${rates}: GREEN's rate is ${fmtRatio(high.ratio)} BLUE's, suggestive but not conclusive (${ci}, ${fmtP(high.p)} >= ${ALPHA}); not a pass`,
    };
  }
  if (worseDown && low.p < SUGGESTIVE) {
    return {
      ...base,
      classification: 'inconclusive',
      failed: true,
      shift,
      p: low.p,
      why: `${rates}: GREEN's rate is ${fmtRatio(high.ratio)} BLUE's, suggestive but not conclusive (${ci}, ${fmtP(low.p)} >= ${ALPHA}); not a pass`,
    };
  }
  const p = m.bad === 'decrease' ? low.p : m.bad === 'increase' ? high.p : Math.min(high.p, low.p);
  return {
    ...base,
    classification: 'pass',
    failed: false,
    shift,
    p,
    why: `${rates}: no difference beyond the tolerance ${base.tolerance} (${ci}, ${fmtP(p)})${none}`,
  };
}

/** Classifies one metric from its measurements. */
export function judgeMetric(m: JudgeMetric, meas: MetricMeasurement, minSamples: number): MetricEvidence {
  const count = m.kind === 'count';
  const base: Base = {
    name: m.name,
    kind: m.kind,
    bad: m.bad,
    critical: m.critical,
    weight: m.weight,
    tolerance: fmtTolerance(m.tolerance),
    green: group(meas.green, count),
    blue: group(meas.blue, count),
  };
  const inconclusive = (why: string): MetricEvidence => ({ ...base, classification: 'inconclusive', failed: true, why });
  const errors = [
    meas.green.error && `GREEN: ${meas.green.error}`,
    meas.blue.error && `BLUE: ${meas.blue.error}`,
    meas.greenTotal?.error && `GREEN total: ${meas.greenTotal.error}`,
    meas.blueTotal?.error && `BLUE total: ${meas.blueTotal.error}`,
  ].filter(Boolean);
  if (errors.length) return inconclusive(`no data: ${errors.join('; ')}`);
  const short = (['GREEN', 'BLUE'] as const).filter((_, i) => (i ? meas.blue : meas.green).values.length < minSamples);
  if (short.length) {
    const n = (s: Samples) => s.values.length;
    return inconclusive(
      `${n(meas.green) === 0 && n(meas.blue) === 0 ? 'no data' : 'too few samples'}: GREEN ${n(meas.green)}, BLUE ${n(meas.blue)} (minSamples ${minSamples}); never a pass`,
    );
  }
  const worseUp = m.bad !== 'decrease';
  const worseDown = m.bad !== 'increase';

  if (count) return judgeCount(m, meas, base, inconclusive, worseUp, worseDown);
  return judgeValue(m, meas, base, worseUp, worseDown);
}

/** A value metric (latency …): the shift of GREEN against BLUE (Mann-Whitney, Hodges-Lehmann), then its spread. */
function judgeValue(m: JudgeMetric, meas: MetricMeasurement, base: Base, worseUp: boolean, worseDown: boolean): MetricEvidence {
  const g = meas.green.values;
  const b = meas.blue.values;
  const medB = base.blue.median!;
  const tolAbs = typeof m.tolerance === 'number' ? m.tolerance : (Math.abs(medB) * m.tolerance.percent) / 100;
  const hl = hodgesLehmann(g, b, CONFIDENCE);
  const rel = (v: number) => (medB !== 0 ? v / Math.abs(medB) : v === 0 ? 0 : v > 0 ? Infinity : -Infinity);
  const shift = {
    estimate: hl.estimate,
    lower: hl.lower,
    upper: hl.upper,
    relative: rel(hl.estimate),
    relativeLower: rel(hl.lower),
    relativeUpper: rel(hl.upper),
    level: CONFIDENCE,
  };
  const pHigh = mannWhitney(g, b, 'greater', tolAbs).p;
  const pLow = mannWhitney(g, b, 'less', -tolAbs).p;
  const medians = `GREEN median ${fmtValue(base.green.median!)} vs BLUE ${fmtValue(medB)}`;
  const shown = `shift ${fmtSigned(hl.estimate)} (${pct(shift.relative)}), ${Math.round(CONFIDENCE * 100)}% CI ${pct(shift.relativeLower)}..${pct(shift.relativeUpper)}`;
  if (pHigh < ALPHA) {
    return {
      ...base,
      classification: 'high',
      failed: worseUp,
      shift,
      p: pHigh,
      why: `${medians}: GREEN is higher, ${shown}, beyond the tolerance ${base.tolerance} (${fmtP(pHigh)})${worseUp ? '' : ', which is not bad here'}`,
    };
  }
  if (pLow < ALPHA) {
    return {
      ...base,
      classification: 'low',
      failed: worseDown,
      shift,
      p: pLow,
      why: `${medians}: GREEN is lower, ${shown}, beyond the tolerance ${base.tolerance} (${fmtP(pLow)})${worseDown ? '' : ', an improvement'}`,
    };
  }
  if (worseUp) {
    const s = spreadTest(g, b, SPREAD_FACTOR);
    const spread = { ratio: s.ratio, p: s.p };
    if (s.p < ALPHA) {
      return {
        ...base,
        classification: 'high',
        failed: true,
        shift,
        spread,
        p: s.p,
        why: `${medians}, ${shown}, but GREEN's spread is ${fmtRatio(s.ratio)} BLUE's (median absolute deviation ${fmtValue(s.madX)} vs ${fmtValue(s.madY)}, more than ${SPREAD_FACTOR}x, ${fmtP(s.p)}): its tail is worse`,
      };
    }
    const p = m.bad === 'increase' ? pHigh : Math.min(pHigh, pLow);
    return {
      ...base,
      classification: 'pass',
      failed: false,
      shift,
      spread,
      p,
      why: `${medians}, ${shown}: within the tolerance ${base.tolerance} (${fmtP(p)}); spread ${fmtRatio(s.ratio)} BLUE's`,
    };
  }
  return {
    ...base,
    classification: 'pass',
    failed: false,
    shift,
    p: pLow,
    why: `${medians}, ${shown}: within the tolerance ${base.tolerance} (${fmtP(pLow)})`,
  };
}

/**
 * The over-dispersion of event counts against a binomial/Poisson count, from the counted windows of each group:
 * Pearson χ² / (windows − groups), at least 1. Windows are paired with their totals by series and time.
 */
export function dispersion(groups: [Samples, Samples][]): number {
  let chi = 0;
  let df = 0;
  for (const [events, totals] of groups) {
    const ev = events.counted ?? [];
    const byKey = new Map((totals.countedKeys ?? []).map((k, i) => [k, totals.counted![i]!]));
    const pairs: [number, number][] = [];
    (events.countedKeys ?? []).forEach((k, i) => {
      const n = byKey.get(k);
      if (n !== undefined && n > 0) pairs.push([ev[i]!, n]);
    });
    const x = sum(pairs.map((p) => p[0]));
    const n = sum(pairs.map((p) => p[1]));
    if (pairs.length < 2 || x <= 0 || x >= n) continue;
    const rate = x / n;
    for (const [xi, ni] of pairs) chi += (xi - ni * rate) ** 2 / (ni * rate * (1 - rate));
    df += pairs.length - 1;
  }
  return df >= 5 ? Math.max(1, chi / df) : 1;
}

function fmtRate(r: number): string {
  return `${fmtValue(Number((r * 100).toPrecision(3)))}%`;
}
function fmtRatio(r: number): string {
  return Number.isFinite(r) ? `${fmtValue(Number(r.toPrecision(3)))}x` : 'inf';
}
function fmtSigned(v: number): string {
  return `${v >= 0 ? '+' : ''}${fmtValue(v)}`;
}

function category(score: number, p: { pass: number; marginal: number }): Verdict {
  return score >= p.pass ? 'pass' : score >= p.marginal ? 'marginal' : 'fail';
}

/**
 * The verdict of the judge: a pure function of the parameters and the measurements.
 * - a failing critical metric fails the judge, whatever the score;
 * - score = 100 × (weight of the metrics that passed) / (weight of all); inconclusive metrics count as not passed;
 * - ≥ pass: pass; ≥ marginal: marginal; below: fail — unless the inconclusive metrics could change the category
 *   (the score counting them as passed falls in another one), or a critical metric is inconclusive: inconclusive.
 */
export function judgeVerdict(p: JudgeParams, meas: JudgeMeasurements): JudgeEvidence {
  const metrics = p.metrics.map((m) => judgeMetric(m, meas.metrics.find((x) => x.name === m.name) ?? emptyMeasurement(m.name), p.minSamples));
  const total = sum(metrics.map((m) => m.weight));
  const passed = sum(metrics.filter((m) => !m.failed).map((m) => m.weight));
  const unknown = sum(metrics.filter((m) => m.classification === 'inconclusive').map((m) => m.weight));
  const score = Math.round((1000 * passed) / total) / 10;
  const best = Math.round((1000 * (passed + unknown)) / total) / 10;
  const thresholds = `score ${fmtValue(score)} (pass >= ${p.pass}, marginal >= ${p.marginal})`;
  let verdict: Verdict;
  let why: string;
  const criticalFailed = metrics.filter((m) => m.critical && m.failed && m.classification !== 'inconclusive');
  const criticalUnknown = metrics.filter((m) => m.critical && m.classification === 'inconclusive');
  const failedNames = metrics.filter((m) => m.failed && m.classification !== 'inconclusive').map((m) => `${m.name} (${m.classification})`);
  const unknownNames = metrics.filter((m) => m.classification === 'inconclusive').map((m) => m.name);
  if (criticalFailed.length) {
    verdict = 'fail';
    why = `critical metric ${criticalFailed.map((m) => `${m.name} is ${m.classification}`).join(', ')}; ${thresholds}`;
  } else if (unknown === total) {
    verdict = 'inconclusive';
    why = `no metric has enough data (${unknownNames.join(', ')}); never a pass`;
  } else if (criticalUnknown.length) {
    verdict = 'inconclusive';
    why = `critical metric ${criticalUnknown.map((m) => m.name).join(', ')} is inconclusive; ${thresholds}`;
  } else if (category(score, p) !== category(best, p)) {
    verdict = 'inconclusive';
    why = `${thresholds}, ${fmtValue(best)} if ${unknownNames.join(', ')} had passed: the missing data decides`;
  } else {
    verdict = category(score, p);
    why = `${thresholds}${failedNames.length ? `; not passed: ${failedNames.join(', ')}` : ''}${unknownNames.length ? `; inconclusive: ${unknownNames.join(', ')}` : ''}`;
  }
  return {
    verdict,
    score,
    pass: p.pass,
    marginal: p.marginal,
    why,
    window: { start: new Date(meas.start).toISOString(), end: new Date(meas.end).toISOString(), step: formatMs(meas.stepMs) },
    minSamples: p.minSamples,
    metrics,
  };
}

function emptyMeasurement(name: string): MetricMeasurement {
  const none = (): Samples => ({ values: [], series: 0, dropped: { nan: 0, gaps: 0, stale: 0 }, error: 'not measured' });
  return { name, green: none(), blue: none() };
}

/** Human lines of the evidence (live view, `status`, Markdown report). */
export function evidenceLines(e: JudgeEvidence): string[] {
  const lines = [`${e.verdict.toUpperCase()}: ${e.why}`, `window ${e.window.start} .. ${e.window.end}, step ${e.window.step}, minSamples ${e.minSamples}`];
  for (const m of e.metrics) {
    const n = (g: GroupEvidence) => {
      const d = g.dropped.nan + g.dropped.gaps + g.dropped.stale;
      return `${g.samples} samples/${g.series} series${d ? ` (dropped ${[g.dropped.nan && `${g.dropped.nan} NaN`, g.dropped.gaps && `${g.dropped.gaps} gaps`, g.dropped.stale && `${g.dropped.stale} stale`].filter(Boolean).join(', ')})` : ''}`;
    };
    lines.push(
      `${m.classification.toUpperCase()}${m.failed && m.classification !== 'inconclusive' ? ' (bad)' : ''} ${m.name}${m.critical ? ' [critical]' : ''}${m.weight !== 1 ? ` weight ${m.weight}` : ''}: ${m.why}`,
    );
    lines.push(`    GREEN ${n(m.green)}, BLUE ${n(m.blue)}; tolerance ${m.tolerance}, bad: ${m.bad}`);
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------------------------
// The gate

async function readRange(
  ctx: GateContext,
  monitorName: string,
  expr: string,
  w: { start: number; end: number; stepMs: number },
  countStepMs: number | undefined,
): Promise<Samples> {
  const monitor = ctx.monitor(monitorName);
  if (!monitor.range) throw new ProviderError(`monitor ${monitorName} cannot run range queries (the judge needs type: prometheus)`, false);
  try {
    return collectSamples(await monitor.range(monitorContext(ctx), ctx.render(expr), w), w, countStepMs === undefined, countStepMs);
  } catch (err) {
    if (ctx.signal.aborted) throw new ProviderError('gate aborted', false);
    return { values: [], series: 0, dropped: { nan: 0, gaps: 0, stale: 0 }, error: (err as Error).message.split('\n')[0]! };
  }
}

/** Reads every metric of the judge over [start, end]: the measurements judgeVerdict needs. */
export async function measureJudge(ctx: GateContext, p: JudgeParams, start: number, end: number): Promise<JudgeMeasurements> {
  const metrics = await Promise.all(
    p.metrics.map(async (m): Promise<MetricMeasurement> => {
      const w = { start, end, stepMs: p.step };
      const c = m.kind === 'count' ? countStep(m, p.step) : undefined;
      const [green, blue, greenTotal, blueTotal] = await Promise.all([
        readRange(ctx, p.monitor, m.green, w, c),
        readRange(ctx, p.monitor, m.blue, w, c),
        m.greenTotal ? readRange(ctx, p.monitor, m.greenTotal, w, c) : undefined,
        m.blueTotal ? readRange(ctx, p.monitor, m.blueTotal, w, c) : undefined,
      ]);
      return { name: m.name, green, blue, greenTotal, blueTotal };
    }),
  );
  return { start, end, stepMs: p.step, metrics };
}

/** The gate's result for a verdict: only pass is ok; marginal and inconclusive ask a person (the engine pauses). */
export function judgeResult(e: JudgeEvidence): GateResult {
  const values: Record<string, number | string> = { verdict: e.verdict, score: e.score, pass: e.pass, marginal: e.marginal };
  for (const m of e.metrics) values[m.name] = m.classification;
  return { ok: e.verdict === 'pass', verdict: e.verdict, observed: `${e.verdict}: ${e.why}`, values, evidence: e };
}

export const judgeGate: Gate<JudgeParams> = {
  key: 'judge',
  doc: {
    options: {
      judge: 'The monitor, the window and the metrics compared.',
      'judge.monitor': 'A prometheus monitor declared under providers: (range queries).',
      'judge.window': "The last this long of the wave; absent: since the wave's hosts were restored.",
      'judge.step': 'Range query resolution (one sample per step).',
      'judge.minSamples': 'Samples per side below which a metric is inconclusive.',
      'judge.metrics':
        'The metrics: { name, green, blue, kind: value|count, greenTotal, blueTotal, bad: increase|decrease|either, tolerance, critical, weight }.',
      'judge.pass': 'Score (0–100) at or above which the verdict is pass.',
      'judge.marginal': 'Score at or above which (below pass) the verdict is marginal: a person decides.',
    },
    summary:
      "Automated canary analysis: GREEN against BLUE over a window (default: since the wave's hosts were restored), metric by metric, with rank statistics (value metrics) or an exact rate test (count metrics); a weighted score gives pass / marginal / fail / inconclusive, and the verdict carries its evidence. Inconclusive is not a pass.",
    checkedAgainst: 'real Prometheus 2.42 (Debian) range queries; simulated measurements in bench/judge.mjs',
    example:
      '- name: canary-analysis\n  judge:\n    monitor: prom\n    window: 10m\n    metrics:\n      - { name: p99 latency, green: \'histogram_quantile(0.99, sum by (le) (rate(http_seconds_bucket{group="GREEN"}[1m])))\', blue: \'histogram_quantile(0.99, sum by (le) (rate(http_seconds_bucket{group="BLUE"}[1m])))\', tolerance: 10% }\n      - { name: errors, kind: count, green: \'sum(increase(http_errors_total{group="GREEN"}[10m]))\', greenTotal: \'sum(increase(http_requests_total{group="GREEN"}[10m]))\', blue: \'sum(increase(http_errors_total{group="BLUE"}[10m]))\', blueTotal: \'sum(increase(http_requests_total{group="BLUE"}[10m]))\', critical: true }',
  },
  params,
  defaultName: () => 'judge',
  uses: (p) => [{ provider: p.monitor, role: 'monitor' }],
  describe: (p) =>
    `GREEN vs BLUE on ${p.metrics.map((m) => m.name).join(', ')} (${p.monitor}, ${p.window ? `last ${formatMs(p.window)}` : 'since restore'}, pass >= ${p.pass}, marginal >= ${p.marginal})`,
  async run(ctx, p) {
    // The window starts no earlier than the wave's hosts were restored, plus the longest range of the queries
    // (rate(x[1m]) a minute after the restore still averages samples from before it): it holds the new version only.
    // After a wave (verify) the judge waits until the window is full; as a watch check it judges what there is.
    const lag = Math.max(0, ...p.metrics.flatMap((m) => [m.green, m.blue, m.greenTotal ?? '', m.blueTotal ?? ''].map(longestRange)));
    const since = (ctx.since ?? Date.now() - (p.window ?? p.step * p.minSamples) - lag) + lag;
    const span = p.window ?? p.step * Math.ceil(p.minSamples / Math.max(1, ctx.hosts.length));
    if (!ctx.watching) {
      for (;;) {
        const left = since + span - Date.now();
        if (left <= 0) break;
        ctx.progress(`collecting GREEN and BLUE samples: ${formatMs(Math.max(0, Date.now() - since))} of ${formatMs(span)}`);
        await pause(Math.min(left, 5000), ctx.signal);
      }
    }
    const end = Date.now();
    const start = p.window ? Math.max(since, end - p.window) : since;
    const meas = await measureJudge(ctx, p, start, end);
    // After the last wave the whole release is GREEN: with no BLUE series left there is nothing to compare with.
    if (ctx.lastWave && meas.metrics.every((m) => !m.blue.error && m.blue.series === 0)) {
      return { ok: true, verdict: 'pass', observed: 'skipped: after the last wave no BLUE series is left to compare GREEN with' };
    }
    const result = judgeResult(judgeVerdict(p, meas));
    // Every query failed (monitor down): nothing was measured — the engine retries, then halts (not a verdict).
    if (meas.metrics.every((m) => m.green.error || m.blue.error || m.greenTotal?.error || m.blueTotal?.error)) return { ...result, unknown: true };
    return result;
  },
};
