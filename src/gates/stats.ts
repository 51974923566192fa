/**
 * The statistics of the `judge:` gate, written here on purpose: no maintained JavaScript library gives a
 * Mann-Whitney test with exact p-values for small samples, the tie-corrected normal approximation with continuity
 * correction, the Hodges-Lehmann shift with its distribution-free confidence interval and an exact conditional
 * test for two rates together (the stats packages of the registry stop at the signed-rank test or offer only the
 * normal approximation without ties). Every function follows the definition R's `stats` package uses
 * (wilcox.test, binom.test, poisson.test) and is tested against R's published outputs (test/gates/stats.test.ts).
 */

export type Alternative = 'two-sided' | 'greater' | 'less';

// ---------------------------------------------------------------------------------------------------------------
// Distributions

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9: ~15 significant digits). */
export function lnGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012,
    9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lnGamma(1 - x);
  x -= 1;
  let a = c[0]!;
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** The complementary error function (W. J. Cody's rational approximations: relative error < 1e-15). */
/* eslint-disable no-loss-of-precision -- Cody's published coefficients, kept digit for digit as printed (JS rounds them to the nearest double) */
function erfc(x: number): number {
  const ax = Math.abs(x);
  let r: number;
  if (ax < 0.5) {
    const t = x * x;
    const top = (((0.185777706184603153 * t + 3.1611237438705656) * t + 113.864154151050156) * t + 377.485237685302021) * t + 3209.37758913846947;
    const bot = (((t + 23.6012909523441209) * t + 244.024637934444173) * t + 1282.61652607737228) * t + 2844.23683343917062;
    return 1 - (x * top) / bot;
  }
  if (ax < 4) {
    const top =
      (((((((2.15311535474403846e-8 * ax + 0.564188496988670089) * ax + 8.88314979438837594) * ax + 66.1191906371416295) * ax + 298.635138197400131) * ax +
        881.95222124176909) *
        ax +
        1712.04761263407058) *
        ax +
        2051.07837782607147) *
        ax +
      1230.33935479799725;
    const bot =
      (((((((ax + 15.7449261107098347) * ax + 117.693950891312499) * ax + 537.181101862009858) * ax + 1621.38957456669019) * ax + 3290.79923573345963) * ax +
        4362.61909014324716) *
        ax +
        3439.36767414372164) *
        ax +
      1230.33935480374942;
    r = (Math.exp(-ax * ax) * top) / bot;
  } else {
    const z = 1 / (ax * ax);
    const top =
      ((((0.0163153871373020978 * z + 0.305326634961232344) * z + 0.360344899949804439) * z + 0.125781726111229246) * z + 0.0160837851487422766) * z +
      6.58749161529837803e-4;
    const bot = ((((z + 2.56852019228982242) * z + 1.87295284992346725) * z + 0.527905102951428412) * z + 0.0605183413124413191) * z + 0.00233520497626869185;
    r = (Math.exp(-ax * ax) / ax) * (0.564189583547756287 - (z * top) / bot);
  }
  return x < 0 ? 2 - r : r;
}
/* eslint-enable no-loss-of-precision */

/** P(Z ≤ z) for a standard normal Z. */
export function pnorm(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

/** The standard normal quantile (Acklam's algorithm, refined by one Newton step: ~1e-15). */
export function qnorm(p: number): number {
  if (p <= 0) return -Infinity;
  if (p >= 1) return Infinity;
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  let x: number;
  if (p < 0.02425) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  } else if (p <= 1 - 0.02425) {
    const q = p - 0.5;
    const r = q * q;
    x =
      ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
      (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -(((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  const e = pnorm(x) - p;
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
  return x - u / (1 + (x * u) / 2);
}

/** The regularized incomplete beta function I_x(a, b) (continued fraction, modified Lentz). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log1p(-x));
  // The continued fraction converges fast for x < (a+1)/(a+b+2); use the symmetry otherwise.
  if (x > (a + 1) / (a + b + 2)) return 1 - incompleteBeta(1 - x, b, a);
  const tiny = 1e-300;
  let f = 1;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  f = d;
  for (let m = 1; m <= 10_000; m++) {
    const m2 = 2 * m;
    let num = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    f *= d * c;
    num = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return (front * f) / a;
}

/** P(X = k) for X ~ Binomial(n, p). */
export function dbinom(k: number, n: number, p: number): number {
  if (k < 0 || k > n) return 0;
  if (p === 0) return k === 0 ? 1 : 0;
  if (p === 1) return k === n ? 1 : 0;
  return Math.exp(lnGamma(n + 1) - lnGamma(k + 1) - lnGamma(n - k + 1) + k * Math.log(p) + (n - k) * Math.log1p(-p));
}

/** P(X ≤ k) for X ~ Binomial(n, p). */
export function pbinom(k: number, n: number, p: number): number {
  if (k < 0) return 0;
  if (k >= n) return 1;
  return 1 - incompleteBeta(p, k + 1, n - k);
}

/** P(X ≥ k) for X ~ Binomial(n, p). */
export function pbinomUpper(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  return incompleteBeta(p, k, n - k + 1);
}

// ---------------------------------------------------------------------------------------------------------------
// Ranks and the Mann-Whitney (Wilcoxon rank-sum) test

export function median(values: ArrayLike<number>): number {
  const s = Float64Array.from(values).sort();
  if (!s.length) return NaN;
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

/** Average ranks (1-based) of the values and the tie term Σ(t³ − t) over groups of t equal values. */
export function ranks(values: ArrayLike<number>): { ranks: Float64Array; tieTerm: number } {
  const n = values.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a]! - values[b]!);
  const r = new Float64Array(n);
  let tieTerm = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && values[order[j + 1]!] === values[order[i]!]) j++;
    const avg = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) r[order[k]!] = avg;
    const t = j - i + 1;
    if (t > 1) tieTerm += t * t * t - t;
    i = j + 1;
  }
  return { ranks: r, tieTerm };
}

/**
 * The null distribution of the Mann-Whitney statistic W for sizes m and n (no ties): P(W = w) for w = 0..m·n,
 * by the recurrence P_{m,n}(w) = m/(m+n)·P_{m−1,n}(w−n) + n/(m+n)·P_{m,n−1}(w) (probabilities, not counts, so
 * that nothing overflows or cancels).
 */
function wilcoxDistribution(m: number, n: number): Float64Array {
  // rows[j] = distribution for sizes (i, j) at the current i.
  let prev: Float64Array[] = Array.from({ length: n + 1 }, () => Float64Array.of(1)); // i = 0
  for (let i = 1; i <= m; i++) {
    const cur: Float64Array[] = [Float64Array.of(1)]; // j = 0
    for (let j = 1; j <= n; j++) {
      const d = new Float64Array(i * j + 1);
      const a = prev[j]!; // (i-1, j): W shifted by j when the largest value is an x
      const b = cur[j - 1]!; // (i, j-1)
      const wa = i / (i + j);
      const wb = j / (i + j);
      for (let w = 0; w < a.length; w++) d[w + j] = d[w + j]! + wa * a[w]!;
      for (let w = 0; w < b.length; w++) d[w] = d[w]! + wb * b[w]!;
      cur.push(d);
    }
    prev = cur;
  }
  return prev[n]!;
}

const distributions = new Map<string, Float64Array>();
/** P(W ≤ q) under the null (sizes m, n; no ties): R's pwilcox. */
export function pwilcox(q: number, m: number, n: number): number {
  const key = `${m},${n}`;
  let d = distributions.get(key);
  if (!d) {
    d = wilcoxDistribution(m, n);
    if (distributions.size > 64) distributions.clear();
    distributions.set(key, d);
  }
  q = Math.floor(q + 1e-7);
  if (q < 0) return 0;
  if (q >= m * n) return 1;
  let s = 0;
  for (let w = 0; w <= q; w++) s += d[w]!;
  return Math.min(1, s);
}

/** The smallest q with P(W ≤ q) ≥ p: R's qwilcox. */
export function qwilcox(p: number, m: number, n: number): number {
  for (let q = 0; q <= m * n; q++) if (pwilcox(q, m, n) >= p * (1 - 64 * Number.EPSILON)) return q;
  return m * n;
}

export interface RankTest {
  /** W = rank sum of x − m(m+1)/2 (R's statistic; the number of pairs with x > y, ties counting ½). */
  w: number;
  p: number;
  /** The exact null distribution was used (small samples without ties); otherwise the normal approximation. */
  exact: boolean;
}

/** Below this size of both samples (and without ties) the p-value is exact, as in R. */
export const EXACT_LIMIT = 50;

/**
 * The Mann-Whitney U (Wilcoxon rank-sum) test of x − mu against y, as R's wilcox.test(x, y, mu, alternative):
 * exact p-values for samples under 50 values without ties, otherwise the normal approximation with the tie
 * correction of the variance and a continuity correction.
 */
export function mannWhitney(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  alternative: Alternative = 'two-sided',
  mu = 0,
  opts: { exact?: boolean; correct?: boolean } = {},
): RankTest {
  const m = x.length;
  const n = y.length;
  if (!m || !n) return { w: NaN, p: NaN, exact: false };
  const all = new Float64Array(m + n);
  for (let i = 0; i < m; i++) all[i] = x[i]! - mu;
  for (let j = 0; j < n; j++) all[m + j] = y[j]!;
  const { ranks: r, tieTerm } = ranks(all);
  let rx = 0;
  for (let i = 0; i < m; i++) rx += r[i]!;
  const w = rx - (m * (m + 1)) / 2;
  const exact = (opts.exact ?? (m < EXACT_LIMIT && n < EXACT_LIMIT)) && tieTerm === 0;
  if (exact) {
    let p: number;
    if (alternative === 'greater') p = 1 - pwilcox(w - 1, m, n);
    else if (alternative === 'less') p = pwilcox(w, m, n);
    else p = Math.min(1, 2 * (w > (m * n) / 2 ? 1 - pwilcox(w - 1, m, n) : pwilcox(w, m, n)));
    return { w, p: Math.max(0, Math.min(1, p)), exact: true };
  }
  let z = w - (m * n) / 2;
  const sigma = Math.sqrt(((m * n) / 12) * (m + n + 1 - tieTerm / ((m + n) * (m + n - 1))));
  if (sigma === 0) return { w, p: 1, exact: false }; // every value equal: no evidence either way
  const correction = opts.correct === false ? 0 : alternative === 'two-sided' ? Math.sign(z) * 0.5 : alternative === 'greater' ? 0.5 : -0.5;
  z = (z - correction) / sigma;
  const p = alternative === 'greater' ? 1 - pnorm(z) : alternative === 'less' ? pnorm(z) : 2 * Math.min(pnorm(z), 1 - pnorm(z));
  return { w, p: Math.min(1, p), exact: false };
}

// ---------------------------------------------------------------------------------------------------------------
// Hodges-Lehmann

export interface Shift {
  /** The Hodges-Lehmann estimate: the median of all differences x_i − y_j. */
  estimate: number;
  lower: number;
  upper: number;
  /** The confidence level asked for. */
  level: number;
}

/** Above this many pairs the samples are thinned to evenly spaced order statistics (memory and time bound). */
const MAX_PAIRS = 4_000_000;

function thin(sorted: Float64Array<ArrayBufferLike>, k: number): Float64Array<ArrayBufferLike> {
  if (sorted.length <= k) return sorted;
  const out = new Float64Array(k);
  for (let i = 0; i < k; i++) out[i] = sorted[Math.floor(((i + 0.5) * sorted.length) / k)]!;
  return out;
}

/**
 * The Hodges-Lehmann shift of x against y and its distribution-free confidence interval: the order statistics
 * of the m·n differences at the Mann-Whitney critical values — exact (R's qwilcox rule, as wilcox.test(conf.int=TRUE))
 * for small samples without ties, otherwise the normal critical value with the tie-corrected variance
 * (Hollander & Wolfe, Nonparametric Statistical Methods, §4.3).
 */
export function hodgesLehmann(x: ArrayLike<number>, y: ArrayLike<number>, level = 0.95): Shift {
  let xs: Float64Array<ArrayBufferLike> = Float64Array.from(x).sort();
  let ys: Float64Array<ArrayBufferLike> = Float64Array.from(y).sort();
  if (!xs.length || !ys.length) return { estimate: NaN, lower: NaN, upper: NaN, level };
  const { tieTerm } = ranks(Float64Array.from([...xs, ...ys]));
  if (xs.length * ys.length > MAX_PAIRS) {
    const k = Math.floor(Math.sqrt(MAX_PAIRS));
    xs = thin(xs, k);
    ys = thin(ys, k);
  }
  const m = xs.length;
  const n = ys.length;
  const diffs = new Float64Array(m * n);
  let k = 0;
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) diffs[k++] = xs[i]! - ys[j]!;
  diffs.sort();
  const mn = m * n;
  const estimate = mn % 2 ? diffs[(mn - 1) / 2]! : (diffs[mn / 2 - 1]! + diffs[mn / 2]!) / 2;
  const alpha = 1 - level;
  let c: number; // 1-based index of the lower bound
  if (m < EXACT_LIMIT && n < EXACT_LIMIT && tieTerm === 0) {
    c = Math.max(1, qwilcox(alpha / 2, m, n));
  } else {
    const sigma = Math.sqrt(((m * n) / 12) * (m + n + 1 - tieTerm / ((m + n) * (m + n - 1))));
    c = Math.max(1, Math.floor((m * n) / 2 - qnorm(1 - alpha / 2) * sigma));
  }
  return { estimate, lower: diffs[c - 1]!, upper: diffs[mn - c]!, level };
}

// ---------------------------------------------------------------------------------------------------------------
// Exact tests for counts

/** The exact binomial test of x successes in n trials against p, as R's binom.test (two-sided: the minimum-likelihood rule). */
export function binomialTest(x: number, n: number, p: number, alternative: Alternative = 'two-sided'): number {
  if (alternative === 'less') return pbinom(x, n, p);
  if (alternative === 'greater') return pbinomUpper(x, n, p);
  const d = dbinom(x, n, p);
  const mean = n * p;
  const relErr = 1 + 1e-7;
  if (x === mean) return 1;
  if (x < mean) {
    let y = 0;
    for (let i = Math.ceil(mean); i <= n; i++) if (dbinom(i, n, p) <= d * relErr) y++;
    return Math.min(1, pbinom(x, n, p) + pbinomUpper(n - y + 1, n, p));
  }
  let y = 0;
  for (let i = 0; i <= Math.floor(mean); i++) if (dbinom(i, n, p) <= d * relErr) y++;
  return Math.min(1, pbinom(y - 1, n, p) + pbinomUpper(x, n, p));
}

/** Inverts a monotone increasing function on [0, 1] by bisection. */
function invert(f: (p: number) => number, target: number): number {
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 200 && hi - lo > 1e-15; i++) {
    const mid = (lo + hi) / 2;
    if (f(mid) < target) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** The Clopper-Pearson (exact) confidence interval of a binomial proportion, as R's binom.test. */
export function clopperPearson(x: number, n: number, level = 0.95): [number, number] {
  const alpha = 1 - level;
  // P(X ≥ x | p) grows with p: the lower bound is where it reaches α/2; P(X ≤ x | p) falls: the upper bound.
  const lower = x === 0 ? 0 : invert((p) => pbinomUpper(x, n, p), alpha / 2);
  const upper = x === n ? 1 : invert((p) => 1 - pbinom(x, n, p), 1 - alpha / 2);
  return [lower, upper];
}

export interface RateTest {
  /** GREEN's rate over BLUE's (events per total). */
  ratio: number;
  lower: number;
  upper: number;
  p: number;
}

/**
 * Two event rates, x1 events in t1 against x2 in t2, compared exactly by conditioning on the total x1 + x2
 * (Przyborowski & Wilenski): x1 ~ Binomial(x1 + x2, r·t1 / (r·t1 + t2)) under H0: rate1/rate2 = r. The same test
 * and confidence interval as R's poisson.test(c(x1, x2), c(t1, t2), r). For events out of totals that are rare
 * (errors per request) it is the exact rate test; 0 of 1,000 against 5 of 1,000 is p = 0.5⁵ one-sided.
 */
export function rateTest(x1: number, t1: number, x2: number, t2: number, alternative: Alternative = 'two-sided', r = 1, level = 0.95): RateTest {
  const k = x1 + x2;
  const ratio = x2 === 0 ? (x1 === 0 ? NaN : Infinity) : x1 / t1 / (x2 / t2);
  if (k === 0) return { ratio, lower: 0, upper: Infinity, p: 1 };
  const p = binomialTest(x1, k, (r * t1) / (r * t1 + t2), alternative);
  const [lo, hi] = clopperPearson(x1, k, level);
  const toRatio = (q: number) => (q >= 1 ? Infinity : (q / (1 - q)) * (t2 / t1));
  return { ratio, lower: toRatio(lo), upper: toRatio(hi), p };
}

// ---------------------------------------------------------------------------------------------------------------
// Dispersion

export interface SpreadTest {
  /** Median absolute deviation from the median, of x and of y. */
  madX: number;
  madY: number;
  /** madX / madY. */
  ratio: number;
  /** One-sided p that x is more spread out than `factor` times y. */
  p: number;
}

/**
 * A rank version of the Brown-Forsythe test: the absolute deviations of each sample from its own median, compared
 * with the Mann-Whitney test (x's deviations against `factor` times y's). Robust to skew and outliers; it flags a
 * distribution with the same median but a wider spread, which a location test cannot see.
 */
export function spreadTest(x: ArrayLike<number>, y: ArrayLike<number>, factor = 1): SpreadTest {
  const mx = median(x);
  const my = median(y);
  const dx = Float64Array.from(x, (v) => Math.abs(v - mx));
  const dy = Float64Array.from(y, (v) => Math.abs(v - my) * factor);
  const madX = median(dx);
  const madY = median(Float64Array.from(y, (v) => Math.abs(v - my)));
  const ratio = madY === 0 ? (madX === 0 ? 1 : Infinity) : madX / madY;
  return { madX, madY, ratio, p: mannWhitney(dx, dy, 'greater').p };
}
