import { describe, expect, it } from 'vitest';
import { binomialTest, clopperPearson, hodgesLehmann, mannWhitney, pnorm, pwilcox, qnorm, qwilcox, rateTest, spreadTest } from '../../src/gates/stats.js';

/**
 * Reference values are R's published outputs (stats package documentation examples and their printed results),
 * cross-checked with SciPy 1.17 (scipy.stats.mannwhitneyu / binomtest) and, for the exact critical value, with a
 * brute-force enumeration of all C(15, 5) rank arrangements.
 */

// ?wilcox.test: Hollander & Wolfe (1973, p. 69) — permeability constants of the human chorioamnion.
const x = [0.8, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46];
const y = [1.15, 0.88, 0.9, 0.74, 1.21];

describe('normal distribution', () => {
  it('pnorm / qnorm agree with tables', () => {
    expect(pnorm(1.959963984540054)).toBeCloseTo(0.975, 12);
    expect(pnorm(-3)).toBeCloseTo(0.0013498980316301, 14);
    expect(qnorm(0.975)).toBeCloseTo(1.959963984540054, 10);
    expect(qnorm(0.001)).toBeCloseTo(-3.090232306167813, 10);
  });
});

describe('Mann-Whitney U (R wilcox.test)', () => {
  it('exact: wilcox.test(x, y, alternative = "greater") gives W = 35, p-value = 0.1272', () => {
    const r = mannWhitney(x, y, 'greater');
    expect(r.w).toBe(35);
    expect(r.exact).toBe(true);
    expect(r.p).toBeCloseTo(0.1272061272, 8);
  });

  it('exact two-sided doubles the smaller tail (p = 0.2544) and "less" is its complement', () => {
    expect(mannWhitney(x, y).p).toBeCloseTo(0.2544122544, 8);
    expect(mannWhitney(x, y, 'less').p).toBeCloseTo(pwilcox(35, 10, 5), 12);
    expect(mannWhitney(x, y, 'less').p + mannWhitney(x, y, 'greater').p - 1).toBeCloseTo(pwilcox(35, 10, 5) - pwilcox(34, 10, 5), 12);
  });

  it('normal approximation without continuity correction: exact = FALSE, correct = FALSE gives p = 0.1103', () => {
    const r = mannWhitney(x, y, 'greater', 0, { exact: false, correct: false });
    expect(r.exact).toBe(false);
    expect(r.p).toBeCloseTo(0.110335681, 8);
  });

  it('ties: normal approximation with tie correction and continuity correction (W = 51.5, p-value = 0.5966)', () => {
    // Printed R session on endmemo.com/r/wilcoxon.php ("cannot compute exact p-value with ties").
    const a = [1, 5, 9, 24, 56, 21, 3, 7, 21, 4];
    const b = [12, 15, 5, 9, 9, 14, 56, 22, 3, 7, 32, 5];
    const r = mannWhitney(a, b);
    expect(r.w).toBe(51.5);
    expect(r.exact).toBe(false);
    expect(r.p).toBeCloseTo(0.5966, 4);
    const c = mannWhitney(a, [1233, 4356, 987, 39999, 1111, 200000]);
    expect(c.w).toBe(0);
    expect(c.p).toBeCloseTo(0.001364, 6);
  });

  it('mu shifts x before ranking (H0: location of x − mu equals that of y)', () => {
    const shifted = x.map((v) => v - 0.5);
    expect(mannWhitney(x, y, 'greater', 0.5).p).toBeCloseTo(mannWhitney(shifted, y, 'greater').p, 12);
  });

  it('the exact null distribution sums to 1 and is symmetric', () => {
    expect(pwilcox(50, 10, 5)).toBeCloseTo(1, 12);
    for (let q = 0; q < 25; q++) expect(pwilcox(q, 10, 5)).toBeCloseTo(1 - pwilcox(49 - q, 10, 5), 12);
    // qwilcox(0.025, 10, 5) = 9 (brute-force enumeration of the 3003 arrangements).
    expect(qwilcox(0.025, 10, 5)).toBe(9);
  });
});

describe('Hodges-Lehmann shift', () => {
  it('wilcox.test(x, y, conf.int = TRUE): difference in location 0.305, 95% CI [-0.15, 0.76]', () => {
    const s = hodgesLehmann(x, y);
    expect(s.estimate).toBeCloseTo(0.305, 12);
    expect(s.lower).toBeCloseTo(-0.15, 12);
    expect(s.upper).toBeCloseTo(0.76, 12);
  });

  it('large samples: the interval covers a known shift and narrows with n', () => {
    let seed = 7;
    const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    const a = Array.from({ length: 400 }, () => rnd() + 0.3);
    const b = Array.from({ length: 400 }, () => rnd());
    const s = hodgesLehmann(a, b);
    expect(s.lower).toBeLessThan(0.3);
    expect(s.upper).toBeGreaterThan(0.3);
    expect(s.upper - s.lower).toBeLessThan(0.1);
    expect(Math.abs(s.estimate - 0.3)).toBeLessThan(0.05);
  });
});

describe('exact tests for counts', () => {
  it('binom.test(682, 925, p = 0.75): p-value = 0.3825, 95% CI 0.7076683 0.7654066 (R documentation, Mendel)', () => {
    expect(binomialTest(682, 925, 0.75)).toBeCloseTo(0.3824916, 6);
    const [lo, hi] = clopperPearson(682, 925);
    expect(lo).toBeCloseTo(0.7076683, 7);
    expect(hi).toBeCloseTo(0.7654066, 7);
  });

  it('poisson.test(c(11, 6+8+7), c(800, 1083+1050+878)): p-value = 0.07967 (R documentation, eba1977)', () => {
    const r = rateTest(11, 800, 21, 1083 + 1050 + 878);
    expect(r.p).toBeCloseTo(0.07967, 5);
    expect(r.ratio).toBeCloseTo(11 / 800 / (21 / 3011), 12);
    expect(r.lower).toBeLessThan(1);
    expect(r.upper).toBeGreaterThan(r.ratio);
  });

  it('0 errors of 1,000 against 5 of 1,000 is not a pass: one-sided p = 0.5^5 = 0.03125', () => {
    const r = rateTest(5, 1000, 0, 1000, 'greater', 1, 0.9);
    expect(r.p).toBeCloseTo(0.03125, 12);
    expect(r.ratio).toBe(Infinity);
    // The 90% interval (its lower bound is the one-sided 95% bound): Clopper-Pearson 0.05^(1/5) → odds 1.218.
    expect(r.lower).toBeCloseTo(Math.pow(0.05, 0.2) / (1 - Math.pow(0.05, 0.2)), 6);
    expect(r.lower).toBeGreaterThan(1);
  });

  it('nothing on either side: no evidence (p = 1)', () => {
    expect(rateTest(0, 1000, 0, 1000, 'greater').p).toBe(1);
  });
});

describe('dispersion', () => {
  it('flags a wider spread with the same median, not an equal one', () => {
    let seed = 11;
    const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5;
    const blue = Array.from({ length: 200 }, () => 100 + rnd() * 10);
    const wide = Array.from({ length: 200 }, () => 100 + rnd() * 30);
    const same = Array.from({ length: 200 }, () => 100 + rnd() * 10);
    const w = spreadTest(wide, blue, 1.5);
    expect(w.ratio).toBeGreaterThan(2.5);
    expect(w.p).toBeLessThan(1e-6);
    expect(spreadTest(same, blue, 1.5).p).toBeGreaterThan(0.2);
    // Location test cannot see it:
    expect(mannWhitney(wide, blue).p).toBeGreaterThan(0.05);
  });
});
