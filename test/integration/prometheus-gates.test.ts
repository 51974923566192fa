import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareGate } from '../../src/gates/compare.js';
import { queryGate } from '../../src/gates/query.js';
import { prometheusMonitor } from '../../src/providers/monitor/prometheus.js';
import type { Monitor } from '../../src/providers/types.js';
import { makeEnv, makeGateContext } from '../helpers/contexts.js';
import { hasPrometheus, MetricTarget, startPrometheus, type Prometheus } from './helpers/prometheus.js';
import { removeDir, tempDir } from './helpers/process.js';

/**
 * Verification gates against a real Prometheus: two GREEN hosts (the new version) and one BLUE host (the old one),
 * labelled by the scrape config. The GREEN error rate starts to rise when `failingSince` is set.
 */
const has = hasPrometheus();

describe.skipIf(!has)('query and compare gates with a real Prometheus', () => {
  let dir: string;
  let prom: Prometheus;
  let monitor: Monitor;
  let failingSince = 0;
  let greenP99 = 0.22;
  const greenTraffic = () => ({
    rps: 40,
    // 0 until the failure starts, then +10 % of requests failing per second.
    errorRatio: failingSince ? Math.min(0.9, ((Date.now() - failingSince) / 1000) * 0.1) : 0,
    p99: greenP99,
  });
  const green = [new MetricTarget(greenTraffic), new MetricTarget(greenTraffic)];
  const blue = new MetricTarget(() => ({ rps: 40, errorRatio: 0.001, p99: 0.2 }));

  beforeAll(async () => {
    dir = tempDir('prom-gates');
    for (const t of [...green, blue]) await t.start();
    prom = await startPrometheus(dir, [
      { job: 'green', targets: green.map((t) => t.address), labels: { group: 'GREEN' } },
      { job: 'blue', targets: [blue.address], labels: { group: 'BLUE' } },
    ]);
    await prom.waitForSeries('rate(app_requests_total[3s])', 3);
    monitor = prometheusMonitor.create(prometheusMonitor.options.parse({ url: prom.url }), makeEnv()) as Monitor;
  });
  afterAll(async () => {
    await prom?.stop();
    for (const t of [...green, blue]) await t.stop();
    if (dir) removeDir(dir);
  });

  const errorRate = 'sum(rate(app_errors_total{group="{{group}}"}[3s])) / sum(rate(app_requests_total{group="{{group}}"}[3s]))';
  const ctx = () => makeGateContext({ monitors: { prom: monitor } });

  it('a healthy GREEN error rate passes a query gate held for 2 s', async () => {
    const r = await queryGate.run(ctx(), queryGate.params.parse({ monitor: 'prom', expr: errorRate, max: 0.05, for: '2s', interval: '500ms' }));
    expect(r.ok, r.observed).toBe(true);
    expect(r.values).toMatchObject({ value: 0, max: 0.05 });
    expect(r.values!.polls).toBeGreaterThanOrEqual(5);
  });

  it('compare: GREEN p99 within maxRatio of BLUE passes; 1.5x fails with both values', async () => {
    const p = {
      monitor: 'prom',
      metric: 'p99 latency',
      green: 'avg(app_latency_p99_seconds{group="GREEN"})',
      blue: 'avg(app_latency_p99_seconds{group="BLUE"})',
    };
    const ok = await compareGate.run(ctx(), compareGate.params.parse({ ...p, maxRatio: 1.2 }));
    expect(ok).toMatchObject({ ok: true, observed: 'p99 latency: GREEN 0.22 / BLUE 0.2 = 1.1 <= 1.2' });
    greenP99 = 0.3;
    // Until Prometheus has scraped the new value from both GREEN hosts.
    await prom.waitForSeries('app_latency_p99_seconds{group="GREEN"} == 0.3', green.length);
    const bad = await compareGate.run(ctx(), compareGate.params.parse({ ...p, maxRatio: 1.2 }));
    expect(bad).toMatchObject({ ok: false, observed: 'p99 latency: GREEN 0.3 / BLUE 0.2 = 1.5 > 1.2', values: { green: 0.3, blue: 0.2 } });
  });

  it('compare: a side without data fails, it is not a pass', async () => {
    const r = await compareGate.run(
      ctx(),
      compareGate.params.parse({
        monitor: 'prom',
        metric: 'p99',
        green: 'avg(app_latency_p99_seconds{group="GREEN"})',
        blue: 'avg(app_latency_p99_seconds{group="BLUE-typo"})',
        maxRatio: 2,
      }),
    );
    expect(r).toMatchObject({ ok: false, observed: 'p99: no data (BLUE: no data (empty result))' });
  });

  it('a rising GREEN error rate fails the gate at the first breach, with the measured value', async () => {
    failingSince = Date.now();
    const t0 = Date.now();
    const r = await queryGate.run(ctx(), queryGate.params.parse({ monitor: 'prom', expr: errorRate, max: 0.05, for: '30s', interval: '500ms' }));
    expect(r.ok).toBe(false);
    expect(r.observed).toMatch(/^0\.\d+ > max 0.05 at poll \d+ \(after [\d.]+s\)$/);
    expect(r.values!.value as number).toBeGreaterThan(0.05);
    expect(Date.now() - t0).toBeLessThan(20_000); // generous: it failed at the breach, long before its 30 s `for`
    // the BLUE side stays fine: only the new version is judged
    const blueRate = errorRate.replaceAll('{{group}}', 'BLUE');
    expect((await queryGate.run(ctx(), queryGate.params.parse({ monitor: 'prom', expr: blueRate, max: 0.05 }))).ok).toBe(true);
  });
});
