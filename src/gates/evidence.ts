/** The evidence of a `judge:` verdict (src/gates/judge.ts): plain data, journalled and sent with events. */

export interface Dropped {
  /** NaN or ±Inf samples (e.g. histogram_quantile without traffic). */
  nan: number;
  /** Steps of the window where a series had no sample (scrape gaps, a series that started late). */
  gaps: number;
  /** Repeats of a value frozen for longer than Prometheus's lookback (a series that stopped but was not marked stale). */
  stale: number;
}

export type Classification = 'pass' | 'high' | 'low' | 'inconclusive';
export type Verdict = 'pass' | 'marginal' | 'fail' | 'inconclusive';

export interface GroupEvidence {
  samples: number;
  series: number;
  dropped: Dropped;
  /** value metrics: the median sample; count metrics: the rate (events / total). */
  median?: number;
  events?: number;
  total?: number;
  /** count metrics (on GREEN's entry): the over-dispersion φ of the counts over both groups (1: Poisson). */
  dispersion?: number;
  /** value metrics: 21 quantiles (0, 5 %, …, 100 %) for a distribution plot. */
  quantiles?: number[];
}

export interface MetricEvidence {
  name: string;
  kind: 'value' | 'count';
  bad: 'increase' | 'decrease' | 'either';
  critical: boolean;
  weight: number;
  /** As written: "10%" or an absolute number. */
  tolerance: string;
  classification: Classification;
  /** The classification is in the bad direction (or the metric is inconclusive: not a pass). */
  failed: boolean;
  why: string;
  green: GroupEvidence;
  blue: GroupEvidence;
  /**
   * value: GREEN − BLUE (Hodges-Lehmann) and the same relative to BLUE's median; count: GREEN's rate over BLUE's
   * (relative = ratio − 1). With its CONFIDENCE interval.
   */
  shift?: { estimate: number; lower: number; upper: number; relative?: number; relativeLower?: number; relativeUpper?: number; level: number };
  /** The p-value of the test that decided (or of the bad direction when nothing was found). */
  p?: number;
  spread?: { ratio: number; p: number };
}

export interface JudgeEvidence {
  verdict: Verdict;
  /** 0..100: the weight share of metrics that passed. */
  score: number;
  pass: number;
  marginal: number;
  why: string;
  window: { start: string; end: string; step: string };
  minSamples: number;
  metrics: MetricEvidence[];
}
