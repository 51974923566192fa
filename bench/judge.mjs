// The judge's quality: `npm run bench:judge` (builds first), or `node bench/judge.mjs [--runs N] [--seed S]`.
// Simulated GREEN/BLUE range-query results (log-normal p99 latencies, per-instance offsets, scrape gaps and NaN
// samples, over-dispersed error counts) judged by the real judgeVerdict at its default settings, and by today's
// `compare` gate (maxRatio 1.2) on the same data. Prints a table and writes it into README.md's "Canary judge" part.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { judgeGate, judgeVerdict, collectSamples, countStep } = await import(join(ROOT, 'dist/gates/judge.js'));
const { compareGate } = await import(join(ROOT, 'dist/gates/compare.js'));

const args = process.argv.slice(2);
const arg = (name, dflt) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt);
const RUNS = arg('--runs', 500);
let seed = arg('--seed', 20261203) >>> 0;

// ---- random numbers (seeded: the table is reproducible) ----
function rnd() {
  // mulberry32
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const normal = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
function gamma(shape) {
  // Marsaglia-Tsang (shape >= 1)
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x, v;
    do {
      x = normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rnd();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}
function poisson(lambda) {
  if (lambda > 50) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * normal()));
  const L = Math.exp(-lambda);
  let k = 0;
  let p = 1;
  do {
    k++;
    p *= rnd();
  } while (p > L);
  return k - 1;
}

// ---- the simulated fleet ----
// A 12-host service, the first wave of 25 %: 3 GREEN hosts against 9 BLUE. Window 10 minutes, step 15 s.
const SIM = {
  blueHosts: 9,
  greenHosts: 3,
  windowMs: 10 * 60_000,
  stepMs: 15_000,
  p99: 0.25, // seconds
  sampleSigma: 0.15, // log-normal noise of one p99 reading (log scale)
  instanceSigma: 0.04, // per-instance offset (log scale): hosts are not identical
  gap: 0.03, // share of scrapes missing
  nan: 0.01, // share of NaN readings (a step without requests)
  rps: 8, // requests per second per host
  errorRate: 0.005,
  errorDispersion: 4, // gamma shape of minute-to-minute error bursts (over-dispersed counts)
};

const END = Date.UTC(2026, 11, 3, 12, 0, 0);
const START = END - SIM.windowMs;

/** A range result: one series per host, samples at each step, some missing, some NaN. */
function latencySeries(hosts, { scale = 1, sigma = SIM.sampleSigma, steps }) {
  const out = [];
  for (let h = 0; h < hosts; h++) {
    const offset = SIM.instanceSigma * normal();
    const samples = [];
    for (let t = START; t <= END && samples.length < (steps ?? Infinity); t += SIM.stepMs) {
      if (rnd() < SIM.gap) continue;
      const v = rnd() < SIM.nan ? NaN : SIM.p99 * scale * Math.exp(offset + sigma * normal());
      samples.push({ t, v });
    }
    out.push({ labels: { instance: `h${h}` }, samples });
  }
  return out;
}

/**
 * Errors and requests as `sum by (instance) (increase(x[1m]))` read at a 15 s step: every sample is the sum of the
 * last four 15 s increments (overlapping windows, as Prometheus answers), per host.
 */
function countSeries(hosts, { rateFactor = 1, minutes }) {
  const errors = [];
  const totals = [];
  const steps = Math.round(SIM.windowMs / SIM.stepMs) + 1;
  for (let h = 0; h < hosts; h++) {
    const e = [];
    const n = [];
    // Increments from 3 steps before the window start, so that the first sample's 1 m range is full.
    const incE = [];
    const incN = [];
    let burst = 1;
    for (let i = 0; i < steps + 3; i++) {
      if (i % 4 === 0) burst = gamma(SIM.errorDispersion) / SIM.errorDispersion; // bursts last about a minute
      const requests = poisson((SIM.rps * SIM.stepMs) / 1000);
      incN.push(requests);
      incE.push(poisson(requests * SIM.errorRate * rateFactor * burst));
    }
    const from = minutes !== undefined ? steps - minutes * 4 : 0;
    for (let i = Math.max(0, from); i < steps; i++) {
      if (rnd() < SIM.gap) continue;
      const t = START + i * SIM.stepMs;
      const sum = (a) => a[i] + a[i + 1] + a[i + 2] + a[i + 3];
      e.push({ t, v: sum(incE) });
      n.push({ t, v: sum(incN) });
    }
    errors.push({ labels: { instance: `h${h}` }, samples: e });
    totals.push({ labels: { instance: `h${h}` }, samples: n });
  }
  return { errors, totals };
}

// The example, at the default settings (minSamples 50, tolerance 10%, pass 90, marginal 70).
const params = judgeGate.params.parse({
  monitor: 'prom',
  window: '10m',
  step: '15s',
  metrics: [
    { name: 'p99 latency', green: 'p99{group="GREEN"}[1m]', blue: 'p99{group="BLUE"}[1m]', bad: 'increase', critical: true },
    {
      name: 'error rate',
      kind: 'count',
      green: 'sum by (instance) (increase(errors{group="GREEN"}[1m]))',
      greenTotal: 'sum by (instance) (increase(requests{group="GREEN"}[1m]))',
      blue: 'sum by (instance) (increase(errors{group="BLUE"}[1m]))',
      blueTotal: 'sum by (instance) (increase(requests{group="BLUE"}[1m]))',
      bad: 'increase',
    },
  ],
});

const CASES = [
  { key: 'same', label: 'identical versions', want: 'fail', goal: '≤ 2%', latency: {}, errors: {} },
  { key: 'shift', label: '+20% p99 shift', want: 'fail', goal: '≥ 95%', latency: { scale: 1.2 }, errors: {} },
  { key: 'errors', label: '3x error rate (0.5% baseline)', want: 'fail', goal: '≥ 90%', latency: {}, errors: { rateFactor: 3 } },
  { key: 'spread', label: 'same median, 3x spread', want: 'fail', goal: '≥ 90%', latency: { sigma: SIM.sampleSigma * 3 }, errors: {} },
  { key: 'sparse', label: 'sparse data (< minSamples)', want: 'inconclusive', goal: '100%', latency: { steps: 12 }, errors: { minutes: 3 }, greenHosts: 1 },
];

const window = (stepMs) => ({ start: START, end: END, stepMs });

/** Today's compare gate on the same data: the newest reading of each side (avg over hosts), GREEN/BLUE ≤ 1.2. */
async function compareOn(lat, cnt) {
  const last = (series) => {
    const vals = series.map((s) => s.samples.filter((p) => Number.isFinite(p.v)).at(-1)?.v).filter((v) => v !== undefined);
    return vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : undefined;
  };
  const lastSum = (series) => series.reduce((a, s) => a + (s.samples.at(-1)?.v ?? 0), 0);
  const run = async (green, blue) => {
    const monitor = {
      value: async (_c, q) => {
        const v = q === 'G' ? green : blue;
        if (v === undefined) throw new Error('no data (empty result)');
        return v;
      },
    };
    const ctx = { monitor: () => monitor, render: (t) => t, signal: new AbortController().signal, log() {}, progress() {}, hosts: [] };
    return (await compareGate.run(ctx, { monitor: 'prom', metric: 'm', green: 'G', blue: 'B', maxRatio: 1.2 })).ok;
  };
  const latOk = await run(last(lat.green), last(lat.blue));
  const rate = (c) => {
    const n = lastSum(c.totals);
    return n ? lastSum(c.errors) / n : undefined;
  };
  const errOk = await run(rate(cnt.green), rate(cnt.blue));
  return latOk && errOk;
}

const results = [];
const t0 = Date.now();
for (const c of CASES) {
  const counts = { pass: 0, marginal: 0, fail: 0, inconclusive: 0 };
  let compareFail = 0;
  for (let i = 0; i < RUNS; i++) {
    const gh = c.greenHosts ?? SIM.greenHosts;
    const lat = { green: latencySeries(gh, c.latency), blue: latencySeries(SIM.blueHosts, {}) };
    const cnt = { green: countSeries(gh, c.errors), blue: countSeries(SIM.blueHosts, {}) };
    const cw = window(params.step);
    const cs = countStep(params.metrics[1], params.step);
    const meas = {
      start: START,
      end: END,
      stepMs: params.step,
      metrics: [
        { name: 'p99 latency', green: collectSamples(lat.green, window(params.step)), blue: collectSamples(lat.blue, window(params.step)) },
        {
          name: 'error rate',
          green: collectSamples(cnt.green.errors, cw, false, cs),
          blue: collectSamples(cnt.blue.errors, cw, false, cs),
          greenTotal: collectSamples(cnt.green.totals, cw, false, cs),
          blueTotal: collectSamples(cnt.blue.totals, cw, false, cs),
        },
      ],
    };
    const ev = judgeVerdict(params, meas);
    counts[ev.verdict]++;
    if (process.env.JUDGE_DEBUG && (c.key === 'same' ? ev.verdict === 'fail' : ev.verdict !== c.want))
      console.error(c.key, ev.metrics.map((m) => `${m.name}: ${m.classification} ${m.why}`).join(' | '));
    if (!(await compareOn(lat, cnt))) compareFail++;
  }
  const share = (n) => Math.round((1000 * n) / RUNS) / 10;
  const got = share(counts[c.want]);
  const met = c.key === 'same' ? got <= 2 : c.key === 'shift' ? got >= 95 : c.key === 'sparse' ? got === 100 : got >= 90;
  results.push({ ...c, counts, got, met, compare: share(compareFail) });
  console.error(`[bench] ${c.label}: ${JSON.stringify(counts)} compare fails ${share(compareFail)}%`);
}

const pctStr = (x) => `${x}%`;
const lines = [
  `| case (${RUNS} runs each) | counted | judge | goal | met | \`compare\` maxRatio 1.2: fails |`,
  '|---|---|---|---|---|---|',
  ...results.map(
    (r) =>
      `| ${r.label} | ${r.want} | ${pctStr(r.got)} (pass ${r.counts.pass}, marginal ${r.counts.marginal}, fail ${r.counts.fail}, inconclusive ${r.counts.inconclusive}) | ${r.goal} | ${r.met ? 'yes' : '**no**'} | ${pctStr(r.compare)}${r.key === 'sparse' ? ' (never inconclusive)' : ''} |`,
  ),
];
const setup = `Simulated: ${SIM.greenHosts} GREEN vs ${SIM.blueHosts} BLUE hosts, 10 m window, 15 s step; p99 log-normal (median ${SIM.p99 * 1000} ms, σ ${SIM.sampleSigma} per reading, per-host offset σ ${SIM.instanceSigma}), ${SIM.gap * 100}% scrape gaps, ${SIM.nan * 100}% NaN readings; ${SIM.rps} req/s per host, ${SIM.errorRate * 100}% errors with minute-to-minute bursts (gamma shape ${SIM.errorDispersion}). Judge at its defaults: tolerance 5%, one-sided α 0.01, minSamples 50, pass 90, marginal 70; p99 critical, error rate not. Seed ${arg('--seed', 20261203)}, ${((Date.now() - t0) / 1000).toFixed(1)} s.`;
const table = `${setup}\n\n${lines.join('\n')}\n`;
console.log(table);

if (!args.includes('--no-readme')) {
  const readme = join(ROOT, 'README.md');
  const text = readFileSync(readme, 'utf8');
  const begin = '<!-- bench-judge:begin (written by npm run bench:judge) -->';
  const end = '<!-- bench-judge:end -->';
  const a = text.indexOf(begin);
  const b = text.indexOf(end);
  if (a >= 0 && b > a) {
    writeFileSync(readme, text.slice(0, a + begin.length) + '\n' + table + text.slice(b));
    console.error('[bench] README.md updated');
  } else console.error('[bench] README.md has no bench-judge markers: not written');
}
process.exitCode = results.every((r) => r.met) ? 0 : 1;
