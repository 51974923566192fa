/**
 * The judge: samples from range results (NaN, gaps and frozen series dropped and counted), the pure verdict on
 * constructed measurements (each classification and each verdict rule), the gate reading a monitor's range
 * queries, and the release path: a marginal verdict pauses for approval with the evidence; `graywave approve`
 * then lets `resume` finish.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  collectSamples,
  countStep,
  judgeGate,
  judgeVerdict,
  longestRange,
  type JudgeInput,
  type JudgeMeasurements,
  type Samples,
} from '../../src/gates/judge.js';
import { findGate } from '../../src/gates/index.js';
import { readRangeResult } from '../../src/providers/monitor/prometheus.js';
import type { Monitor, RangeSeries } from '../../src/providers/types.js';
import { makeGateContext } from '../helpers/contexts.js';
import { rangeServer } from '../helpers/range-server.js';
import { hostsYaml, tempDirs } from '../helpers/cli.js';
import { approveRelease, resumeRelease, runRelease } from '../../src/app/run.js';
import { releaseStatus } from '../../src/app/status.js';
import { statusText } from '../../src/render/plan.js';
import { describeEvent } from '../../src/render/lines.js';
import type { EngineEvent } from '../../src/engine/events.js';

const STEP = 15_000;
const END = 1_800_000_000_000;
const START = END - 10 * 60_000; // 41 steps

let seed = 42;
const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
const normal = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());

/** `hosts` series of log-normal readings around `median`, one per step. */
function series(hosts: number, median: number, sigma = 0.1): RangeSeries[] {
  return Array.from({ length: hosts }, (_, h) => ({
    labels: { instance: `h${h}` },
    samples: Array.from({ length: 41 }, (_, i) => ({ t: START + i * STEP, v: median * Math.exp(sigma * normal()) })),
  }));
}
const w = { start: START, end: END, stepMs: STEP };
const samples = (s: RangeSeries[]) => collectSamples(s, w);
const none = (error: string): Samples => ({ values: [], series: 0, dropped: { nan: 0, gaps: 0, stale: 0 }, error });

const p = (over: Partial<JudgeInput> = {}) =>
  judgeGate.params.parse({ monitor: 'prom', window: '10m', metrics: [{ name: 'p99', green: 'g', blue: 'b', critical: true }], ...over });
const meas = (metrics: JudgeMeasurements['metrics']): JudgeMeasurements => ({ start: START, end: END, stepMs: STEP, metrics });

describe('samples from a range result', () => {
  it('drops and counts NaN, ±Inf, missing steps and frozen repeats', () => {
    const s: RangeSeries = { labels: {}, samples: [] };
    for (let i = 0; i < 41; i++) {
      if (i === 3 || i === 4) continue; // two gaps
      const v = i === 7 ? NaN : i === 8 ? Infinity : i >= 20 ? 0.5 : 0.1 + i / 1000; // frozen from step 20 on
      s.samples.push({ t: START + i * STEP, v });
    }
    const r = collectSamples([s], w);
    // steps 20..40 are 0.5: step 40 is exactly 300 s (the lookback) after the value first appeared: not yet stale.
    expect(r.dropped).toEqual({ nan: 2, gaps: 2, stale: 0 });
    const longer = collectSamples([{ labels: {}, samples: [...s.samples, ...[41, 42, 43].map((i) => ({ t: START + i * STEP, v: 0.5 }))] }], {
      ...w,
      end: START + 43 * STEP,
    });
    expect(longer.dropped.stale).toBe(3); // steps 41..43: 315 s and more after the value first appeared
    expect(r.values.length).toBe(41 - 2 - 2);
    expect(r.series).toBe(1);
  });

  it('count metrics: only samples a whole range apart are summed (every event once), all count as samples', () => {
    const s: RangeSeries = { labels: { instance: 'a' }, samples: Array.from({ length: 41 }, (_, i) => ({ t: START + i * STEP, v: 4 })) };
    const r = collectSamples([s], w, false, 60_000);
    expect(r.values.length).toBe(41);
    expect(r.counted).toHaveLength(10); // END, END-1m, … END-9m (END-10m's range starts before the window)
    expect(longestRange('sum(increase(errors_total{group="GREEN"}[1m])) / sum(rate(x[5m:30s]))')).toBe(300_000);
    expect(
      countStep(p({ metrics: [{ name: 'e', kind: 'count', green: 'increase(a[50s])', blue: 'b', greenTotal: 'c', blueTotal: 'd' }] }).metrics[0]!, STEP),
    ).toBe(60_000);
  });

  it('reads Prometheus matrix answers (values as strings, NaN and +Inf kept for counting)', () => {
    const r = readRangeResult({
      status: 'success',
      data: {
        resultType: 'matrix',
        result: [
          {
            metric: { instance: 'a' },
            values: [
              [1800000000, '0.25'],
              [1800000015, 'NaN'],
              [1800000030, '+Inf'],
            ],
          },
        ],
      },
    });
    expect(r).toEqual([
      {
        labels: { instance: 'a' },
        samples: [
          { t: 1800000000000, v: 0.25 },
          { t: 1800000015000, v: NaN },
          { t: 1800000030000, v: Infinity },
        ],
      },
    ]);
    expect(() => readRangeResult({ status: 'success', data: { resultType: 'vector', result: [] } })).toThrow(/not a range/);
  });
});

describe('the verdict (pure)', () => {
  it('identical distributions pass, with the evidence', () => {
    const e = judgeVerdict(p(), meas([{ name: 'p99', green: samples(series(3, 0.25)), blue: samples(series(9, 0.25)) }]));
    expect(e.verdict).toBe('pass');
    expect(e.score).toBe(100);
    const m = e.metrics[0]!;
    expect(m).toMatchObject({ classification: 'pass', failed: false, tolerance: '5%' });
    expect(m.green.samples).toBe(123);
    expect(m.blue.samples).toBe(369);
    expect(m.green.median).toBeCloseTo(0.25, 1);
    expect(m.shift!.lower).toBeLessThan(0);
    expect(m.shift!.upper).toBeGreaterThan(0);
    expect(m.why).toMatch(/within the tolerance 5%/);
    expect(m.green.quantiles).toHaveLength(21);
  });

  it('a +30% shift is high and fails a critical metric; the CI and the p-value say why', () => {
    const e = judgeVerdict(p(), meas([{ name: 'p99', green: samples(series(3, 0.325)), blue: samples(series(9, 0.25)) }]));
    expect(e.verdict).toBe('fail');
    expect(e.why).toMatch(/critical metric p99 is high/);
    const m = e.metrics[0]!;
    expect(m.classification).toBe('high');
    expect(m.shift!.relativeLower).toBeGreaterThan(0.05);
    expect(m.p).toBeLessThan(0.01);
    expect(m.why).toMatch(/GREEN is higher, shift \+0\.0\d+ \(\+\d+(\.\d)?%\), 98% CI \+\d+(\.\d)?%\.\.\+\d+(\.\d)?%, beyond the tolerance 5%/);
  });

  it('lower latency with bad: increase is an improvement (classified low, not failed); with bad: decrease it fails', () => {
    const m = [{ name: 'p99', green: samples(series(3, 0.18)), blue: samples(series(9, 0.25)) }];
    const up = judgeVerdict(p(), meas(m));
    expect(up.verdict).toBe('pass');
    expect(up.metrics[0]).toMatchObject({ classification: 'low', failed: false });
    expect(up.metrics[0]!.why).toMatch(/an improvement/);
    const down = judgeVerdict(p({ metrics: [{ name: 'p99', green: 'g', blue: 'b', critical: true, bad: 'decrease' }] }), meas(m));
    expect(down.verdict).toBe('fail');
  });

  it('the same median with a 3x wider spread is flagged for bad: increase', () => {
    const e = judgeVerdict(p(), meas([{ name: 'p99', green: samples(series(3, 0.25, 0.3)), blue: samples(series(9, 0.25, 0.1)) }]));
    expect(e.verdict).toBe('fail');
    expect(e.metrics[0]!.classification).toBe('high');
    expect(e.metrics[0]!.spread!.ratio).toBeGreaterThan(2);
    expect(e.metrics[0]!.why).toMatch(/spread is .*BLUE's/);
  });

  it('fewer than minSamples, or no data, is inconclusive — never a pass', () => {
    const sparse = judgeVerdict(p(), meas([{ name: 'p99', green: samples(series(1, 0.25)), blue: samples(series(9, 0.25)) }]));
    expect(sparse.verdict).toBe('inconclusive');
    expect(sparse.metrics[0]!.why).toBe('too few samples: GREEN 41, BLUE 369 (minSamples 50); never a pass');
    const nodata = judgeVerdict(p(), meas([{ name: 'p99', green: none('no data (empty result)'), blue: samples(series(9, 0.25)) }]));
    expect(nodata.verdict).toBe('inconclusive');
    expect(nodata.metrics[0]!.why).toBe('no data: GREEN: no data (empty result)');
    const empty = judgeVerdict(p(), meas([{ name: 'p99', green: samples([]), blue: samples([]) }]));
    expect(empty.verdict).toBe('inconclusive');
    expect(empty.score).toBe(0);
  });

  const counts = (events: number, total: number, hosts = 1): [Samples, Samples] => {
    // 41 samples per host at a 15 s step over a [1m] range: every 4th from the end is counted (10 per host).
    const mk = (v: (i: number) => number): RangeSeries[] =>
      Array.from({ length: hosts }, (_, h) => ({
        labels: { instance: `h${h}` },
        samples: Array.from({ length: 41 }, (_, i) => ({ t: START + i * STEP, v: v(i) })),
      }));
    const at = (i: number, n: number) => ((40 - i) % 4 === 0 && i >= 4 ? Math.floor(n / 10) + ((40 - i) / 4 < n % 10 ? 1 : 0) : 0);
    return [
      collectSamples(
        mk((i) => at(i, events)),
        w,
        false,
        60_000,
      ),
      collectSamples(
        mk((i) => at(i, total)),
        w,
        false,
        60_000,
      ),
    ];
  };
  const countParams = (over: object = {}) =>
    p({ metrics: [{ name: 'errors', kind: 'count', green: 'e{g}', blue: 'e{b}', greenTotal: 't{g}', blueTotal: 't{b}', ...over }], minSamples: 20 });

  it('count: 5 errors of 1,000 against 0 of 1,000 is not a pass (exact test: suggestive, a person decides); 15 of 1,000 is high', () => {
    const [ge, gt] = counts(5, 1000);
    const [be, bt] = counts(0, 1000);
    const e = judgeVerdict(countParams(), meas([{ name: 'errors', green: ge, blue: be, greenTotal: gt, blueTotal: bt }]));
    const m = e.metrics[0]!;
    expect(m.green).toMatchObject({ events: 5, total: 1000 });
    expect(m.blue).toMatchObject({ events: 0, total: 1000 });
    expect(m.classification).toBe('inconclusive');
    expect(m.p).toBeCloseTo(Math.pow(1050 / 2050, 5), 6); // tolerance 5%: π0 = 1.05·1000 / (1.05·1000 + 1000)
    expect(m.why).toMatch(/suggestive but not conclusive .*not a pass/);
    expect(e.verdict).toBe('inconclusive');
    const [he, ht] = counts(15, 1000);
    const high = judgeVerdict(countParams(), meas([{ name: 'errors', green: he, blue: be, greenTotal: ht, blueTotal: bt }]));
    expect(high.metrics[0]!.classification).toBe('high');
    expect(high.metrics[0]!.p).toBeCloseTo(Math.pow(1050 / 2050, 15), 9);
    expect(high.verdict).toBe('fail'); // score 0 < marginal
  });

  it('count: no events on either side passes with the bound it proves; no traffic is inconclusive', () => {
    const [ge, gt] = counts(0, 5000);
    const [be, bt] = counts(0, 5000);
    const e = judgeVerdict(countParams(), meas([{ name: 'errors', green: ge, blue: be, greenTotal: gt, blueTotal: bt }]));
    expect(e.metrics[0]!.classification).toBe('pass');
    expect(e.metrics[0]!.why).toMatch(/no events on either side \(GREEN's rate is below 0\.0921% at 99% confidence\)/);
    const [ze, zt] = counts(0, 0);
    expect(judgeVerdict(countParams(), meas([{ name: 'errors', green: ze, blue: be, greenTotal: zt, blueTotal: bt }])).metrics[0]!.why).toMatch(/^no traffic/);
  });

  it('score and thresholds: a failing non-critical metric of three is marginal; missing data that decides is inconclusive', () => {
    const three = p({
      pass: 90,
      marginal: 60,
      metrics: [
        { name: 'a', green: 'g', blue: 'b', critical: true },
        { name: 'b', green: 'g', blue: 'b' },
        { name: 'c', green: 'g', blue: 'b' },
      ],
    });
    const ok = () => ({ green: samples(series(3, 0.25)), blue: samples(series(9, 0.25)) });
    const bad = { green: samples(series(3, 0.4)), blue: samples(series(9, 0.25)) };
    const marginal = judgeVerdict(
      three,
      meas([
        { name: 'a', ...ok() },
        { name: 'b', ...ok() },
        { name: 'c', ...bad },
      ]),
    );
    expect(marginal.verdict).toBe('marginal');
    expect(marginal.score).toBe(66.7);
    expect(marginal.why).toBe('score 66.7 (pass >= 90, marginal >= 60); not passed: c (high)');
    const unknown = judgeVerdict(
      three,
      meas([
        { name: 'a', ...ok() },
        { name: 'b', ...ok() },
        { name: 'c', green: none('timeout'), blue: none('timeout') },
      ]),
    );
    expect(unknown.verdict).toBe('inconclusive');
    expect(unknown.why).toBe('score 66.7 (pass >= 90, marginal >= 60), 100 if c had passed: the missing data decides');
    const weighted = p({
      pass: 90,
      marginal: 60,
      metrics: [
        { name: 'a', green: 'g', blue: 'b', weight: 9 },
        { name: 'c', green: 'g', blue: 'b' },
      ],
    });
    expect(
      judgeVerdict(
        weighted,
        meas([
          { name: 'a', ...ok() },
          { name: 'c', ...bad },
        ]),
      ).verdict,
    ).toBe('pass');
  });

  it('params: keys as documented, count needs totals, tolerance as a percentage or a number', () => {
    expect(findGate('judge')).toBe(judgeGate);
    expect(judgeGate.params.safeParse({ monitor: 'p', metrics: [{ name: 'e', kind: 'count', green: 'g', blue: 'b' }] }).success).toBe(false);
    expect(judgeGate.params.safeParse({ monitor: 'p', metrics: [{ name: 'e', green: 'g', blue: 'b', tolerance: 'ten' }] }).success).toBe(false);
    expect(judgeGate.params.safeParse({ monitor: 'p', metrics: [{ name: 'e', green: 'g', blue: 'b', nope: 1 }] }).success).toBe(false);
    expect(judgeGate.params.safeParse({ monitor: 'p', metrics: [], pass: 90 }).success).toBe(false);
    expect(judgeGate.params.safeParse({ monitor: 'p', metrics: [{ name: 'e', green: 'g', blue: 'b' }], pass: 60, marginal: 70 }).success).toBe(false);
    const ok = judgeGate.params.parse({
      monitor: 'p',
      window: '10m',
      step: '15s',
      minSamples: 50,
      metrics: [{ name: 'e', green: 'g', blue: 'b', tolerance: 0.02, weight: 2 }],
      pass: 90,
      marginal: 70,
    });
    expect(ok).toMatchObject({ window: 600_000, step: 15_000, metrics: [{ tolerance: 0.02, weight: 2, kind: 'value', bad: 'increase', critical: false }] });
  });
});

describe('the gate', () => {
  it('reads GREEN and BLUE with range queries over the window (templates rendered) and returns the evidence', async () => {
    const asked: { q: string; start: number; end: number; stepMs: number }[] = [];
    const monitor: Monitor = {
      value: async () => 0,
      async range(_ctx, q, win) {
        asked.push({ q, ...win });
        return q.includes('GREEN') ? series(3, 0.25) : series(9, 0.25);
      },
    };
    const ctx = { ...makeGateContext({ monitors: { prom: monitor } }), since: Date.now() - 3_600_000 };
    const params = p({ metrics: [{ name: 'p99', green: 'lat{group="{{group}}"}', blue: 'lat{group="BLUE"}', critical: true }] });
    const r = await judgeGate.run(ctx, params);
    expect(asked.map((a) => a.q).sort()).toEqual(['lat{group="BLUE"}', 'lat{group="GREEN"}']);
    expect(asked[0]!.end - asked[0]!.start).toBe(600_000);
    expect(asked[0]!.stepMs).toBe(15_000);
    // The fake answers at fixed times; over the real window they fall outside it: the judge has no data.
    expect(r.verdict).toBe('inconclusive');
    expect(r.ok).toBe(false);
    expect(r.evidence!.metrics[0]!.why).toMatch(/no data|too few samples/);
  });

  it('every query failing is "could not be measured" (unknown: the engine retries, then halts), not a verdict', async () => {
    const monitor: Monitor = { value: async () => 0, range: async () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:9090')) };
    const ctx = { ...makeGateContext({ monitors: { prom: monitor } }), since: Date.now() - 3_600_000 };
    const r = await judgeGate.run(ctx, p());
    expect(r).toMatchObject({ ok: false, unknown: true, verdict: 'inconclusive' });
    expect(r.evidence!.metrics[0]!.why).toBe('no data: GREEN: connect ECONNREFUSED 127.0.0.1:9090; BLUE: connect ECONNREFUSED 127.0.0.1:9090');
  });

  it('a monitor without range queries is a clear error', async () => {
    const ctx = { ...makeGateContext({ monitors: { prom: { value: async () => 1 } } }), since: 0 };
    await expect(judgeGate.run(ctx, p())).rejects.toThrow(/monitor prom cannot run range queries \(the judge needs type: prometheus\)/);
  });
});

// ---- the release path, against a small server speaking Prometheus's query_range answer shape ----
/** GREEN's median p99 per metric name in the query (`lat_a{group="GREEN"}` …). */
const greenMedian: Record<string, number> = { a: 0.25, b: 0.25, c: 0.25 };
const prom = rangeServer(greenMedian);

const temp = tempDirs('gw-judge-');

describe('a marginal verdict in a release', () => {
  it('pauses for approval with the evidence (exit 4), shows it in status; approve + resume finishes', async () => {
    const dir = temp();
    greenMedian.c = 0.4; // one non-critical metric of three clearly worse: score 66.7 → marginal
    writeFileSync(
      join(dir, 'pb.yaml'),
      `name: jr
version: "2.0"
hosts:
${hostsYaml(2)}
waves: { size: 1, concurrency: 1 }
onFailure: rollback-wave
steps:
  - name: deploy
    run: "true"
${prom.judgeYaml({ window: '3s', step: '100ms', minSamples: 50 })}`,
    );
    // The window lies after the hosts were restored: the judge waits the 3 s window out after each wave.
    const events: EngineEvent[] = [];
    const req = { file: join(dir, 'pb.yaml'), yes: true, output: 'silent' as const, onEvent: (e: EngineEvent) => events.push(e) };
    expect(await runRelease(req)).toBe(4);
    const failed = events.find((e) => e.event === 'verify.failed') as Extract<EngineEvent, { event: 'verify.failed' }>;
    expect(failed.verdict).toBe('marginal');
    expect(failed.evidence!.score).toBe(66.7);
    expect(failed.evidence!.metrics.map((m) => m.classification)).toEqual(['pass', 'pass', 'high']);
    expect(describeEvent(failed)).toMatch(/verify canary: MARGINAL: marginal: score 66\.7 [\s\S]*\n {4}PASS a \[critical\]: GREEN median/);
    const paused = events.find((e) => e.event === 'run.paused') as Extract<EngineEvent, { event: 'run.paused' }>;
    expect(paused.reason).toMatch(/^wave 1: canary: marginal: score 66\.7 .*graywave approve/);
    expect(events.some((e) => e.event === 'rollback.start')).toBe(false);
    const st = await releaseStatus(req.file);
    expect(st.status).toBe('paused');
    expect(st.waves[0]!.judges![0]).toMatchObject({ check: 'canary', verdict: 'marginal' });
    expect(statusText(st)).toMatch(/judge canary \(.*\): MARGINAL: score 66\.7/);
    expect(statusText(st)).toMatch(/HIGH \(bad\) c: GREEN median 0\.\d+ vs BLUE 0\.\d+: GREEN is higher/);

    // A person looked at it and approves: resume re-measures wave 1 (still marginal: approved, it goes on); wave 2's
    // judge is marginal too and pauses again for its own approval.
    expect((await approveRelease({ file: req.file, yes: true })).wave).toBe(1);
    events.length = 0;
    expect(await resumeRelease(req)).toBe(4);
    expect(events.filter((e) => e.event === 'verify.failed').map((e) => [(e as { wave: number }).wave, (e as { verdict?: string }).verdict])).toEqual([
      [1, 'marginal'],
      [2, 'marginal'],
    ]);
    expect(events.some((e) => e.event === 'step.start' && e.host === 'h-02')).toBe(true);
    // The last wave can be approved too (a marginal judge paused it); then the release finishes.
    expect((await approveRelease({ file: req.file, yes: true })).wave).toBe(2);
    greenMedian.c = 0.25;
    events.length = 0;
    expect(await resumeRelease(req)).toBe(0);
    expect(events.filter((e) => e.event === 'verify.done').map((e) => (e as { verdict?: string }).verdict)).toEqual(['pass']);
  }, 30_000);
});
