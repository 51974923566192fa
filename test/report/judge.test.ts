import { describe, expect, it } from 'vitest';
import { collectSamples, judgeGate, judgeResult, judgeVerdict } from '../../src/gates/judge.js';
import type { JournalRecord } from '../../src/journal/records.js';
import type { RangeSeries } from '../../src/providers/types.js';
import { reportHtml } from '../../src/report/html.js';
import { reportMarkdown } from '../../src/report/markdown.js';
import { buildReport } from '../../src/report/model.js';

/** The report's "Canary judge" section, from a journal whose gate record carries a judge's evidence. */
const END = 1_800_000_000_000;
const START = END - 600_000;
const w = { start: START, end: END, stepMs: 15_000 };
let seed = 3;
const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
const s = (hosts: number, m: number): RangeSeries[] =>
  Array.from({ length: hosts }, (_, h) => ({
    labels: { instance: `h${h}` },
    samples: Array.from({ length: 41 }, (_, i) => ({ t: START + i * 15_000, v: m * (0.9 + 0.2 * rnd()) })),
  }));
const counts = (events: number, total: number): [RangeSeries[], RangeSeries[]] => {
  const mk = (n: number): RangeSeries[] => [
    { labels: { instance: 'a' }, samples: Array.from({ length: 41 }, (_, i) => ({ t: START + i * 15_000, v: (40 - i) % 4 === 0 && i >= 4 ? n / 10 : 0 })) },
  ];
  return [mk(events), mk(total)];
};

const params = judgeGate.params.parse({
  monitor: 'prom',
  window: '10m',
  minSamples: 40,
  metrics: [
    { name: 'p99 <latency>', green: 'g', blue: 'b', critical: true },
    { name: 'errors', kind: 'count', green: 'e', blue: 'f', greenTotal: 't', blueTotal: 'u' },
  ],
});
const [ge, gt] = counts(10, 10_000);
const [be, bt] = counts(10, 10_000);
const evidence = judgeVerdict(params, {
  start: START,
  end: END,
  stepMs: 15_000,
  metrics: [
    { name: 'p99 <latency>', green: collectSamples(s(3, 0.4), w), blue: collectSamples(s(6, 0.25), w) },
    {
      name: 'errors',
      green: collectSamples(ge, w, false, 60_000),
      blue: collectSamples(be, w, false, 60_000),
      greenTotal: collectSamples(gt, w, false, 60_000),
      blueTotal: collectSamples(bt, w, false, 60_000),
    },
  ],
});
const gate = judgeResult(evidence);
const T = (n: number) => new Date(END + n * 1000).toISOString();
const by = { user: 'ana', host: 'ops1', pid: 1 };
const records: JournalRecord[] = [
  { type: 'header', v: 1, release: 'shop', version: '2', planHash: 'x', playbook: '/p.yaml', t: T(0), by },
  { type: 'run', t: T(1), phase: 'start', by },
  {
    type: 'gate',
    t: T(2),
    wave: 1,
    check: 'canary',
    ok: gate.ok,
    observed: gate.observed,
    values: gate.values,
    verdict: gate.verdict,
    evidence: gate.evidence,
  },
];
const input = { records, waves: [{ index: 1, hosts: ['a1'] }], steps: [], hostLog: () => undefined };

describe('report: Canary judge', () => {
  it('HTML: verdict, score, per-metric evidence and an inline SVG plot per metric, escaped', () => {
    expect(evidence.verdict).toBe('fail');
    const html = reportHtml(buildReport(input));
    expect(html).toContain('<h2>Canary judge</h2>');
    expect(html).toMatch(/Wave 1: canary <span class="badge bad">fail<\/span>/);
    expect(html).toContain('score 50 (pass ≥ 90, marginal ≥ 70)');
    expect(html).toContain('p99 &lt;latency&gt;');
    expect(html).not.toContain('p99 <latency>');
    expect(html.match(/<svg class="judge-plot"/g)).toHaveLength(2);
    // The value plot: 21 quantile dots per group; the count plot: two rate bars with events/total.
    expect(html.match(/<circle /g)!.length).toBe(42);
    expect(html).toContain('10/10000 (0.1%)');
    expect(html).toMatch(/\+\d+(\.\d)?% \[\+\d+(\.\d)?%, \+\d+(\.\d)?%\] \(98% CI\)/);
  });

  it('Markdown: the evidence lines', () => {
    const md = reportMarkdown(buildReport(input));
    expect(md).toContain('## Canary judge');
    expect(md).toMatch(/### Wave 1: canary — fail/);
    expect(md).toMatch(/- FAIL: critical metric p99 <latency> is high; score 50/);
    expect(md).toMatch(/- PASS errors: GREEN 10\/10000 \(0\.1%\) vs BLUE 10\/10000 \(0\.1%\)/);
  });
});
