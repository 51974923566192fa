import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitDrainedAction } from '../../src/actions/wait-drained.js';
import { metricsMonitor } from '../../src/providers/monitor/metrics.js';
import { prometheusMonitor } from '../../src/providers/monitor/prometheus.js';
import type { Monitor } from '../../src/providers/types.js';
import { makeEnv, makeHost, makeStepContext } from '../helpers/contexts.js';
import { hasPrometheus, MetricTarget, startPrometheus, type Prometheus } from './helpers/prometheus.js';
import { removeDir, tempDir } from './helpers/process.js';
import { waitFor } from '../helpers/wait.js';

/**
 * waitDrained against a real Prometheus scraping simulated hosts every second: a host whose traffic stops when it is
 * drained, a host that never drains, an idle host; then Prometheus is stopped in the middle of a wait.
 */
const has = hasPrometheus();

describe.skipIf(!has)('waitDrained with a real Prometheus', () => {
  let dir: string;
  let prom: Prometheus;
  let monitor: Monitor;
  let drained = false;
  const busy = new MetricTarget(() => ({ rps: drained ? 0 : 50 }));
  const stuck = new MetricTarget(() => ({ rps: 30 }));
  const idle = new MetricTarget(() => ({ rps: 0 }));
  const targets = [busy, stuck, idle];

  beforeAll(async () => {
    dir = tempDir('prom-wait');
    for (const t of targets) await t.start();
    prom = await startPrometheus(dir, [{ job: 'app', targets: targets.map((t) => t.address) }]);
    // rate() over [3s] needs at least two samples of each target.
    await prom.waitForSeries('rate(app_requests_total[3s])', targets.length);
    monitor = prometheusMonitor.create(prometheusMonitor.options.parse({ url: prom.url, timeout: '2s' }), makeEnv()) as Monitor;
  });
  afterAll(async () => {
    await prom?.stop();
    for (const t of targets) await t.stop();
    if (dir) removeDir(dir);
  });

  const rateQuery = '(sum(rate(app_requests_total{instance="{{host.address}}:{{host.vars.port}}"}[3s])))';
  const hostOf = (t: MetricTarget, name: string) => makeHost(name, '127.0.0.1', { vars: { port: t.port } });

  it('finishes only after stableFor consecutive zero polls once the host is drained', async () => {
    const ctx = makeStepContext({ host: hostOf(busy, 'busy'), monitors: { prom: monitor } });
    const params = waitDrainedAction.params.parse({ monitor: 'prom', query: rateQuery, interval: '500ms', stableFor: 3, timeout: '30s' });
    let drainedAt = 0;
    let doneAt = 0;
    const wait = waitDrainedAction.do(ctx, params).then((r) => ((doneAt = Date.now()), r));
    // Serve traffic for three polls (each seen busy: nothing counts towards done yet), then drain the host.
    await waitFor(() => ctx.progressLines.length >= 3, 'three polls of the busy host', { timeoutMs: 20_000, everyMs: 20 });
    expect(doneAt).toBe(0);
    expect(ctx.progressLines.slice(0, 3).every((l) => / \(0\/3 polls <= 0\)$/.test(l) && !l.startsWith('value 0 '))).toBe(true);
    drained = true;
    drainedAt = Date.now();
    const saved = (await wait) as { value: number; polls: number };
    expect(saved.value).toBe(0);
    const lines = ctx.progressLines;
    expect(lines[0]).toMatch(/^value [1-9]\d*(\.\d+)? \(0\/3 polls <= 0\)$/);
    expect(lines.slice(-3)).toEqual(['value 0 (1/3 polls <= 0)', 'value 0 (2/3 polls <= 0)', 'value 0 (3/3 polls <= 0)']);
    // The three zero polls are 500 ms apart and can only start after the counters stopped moving.
    expect(doneAt - drainedAt).toBeGreaterThanOrEqual(1000);
    expect(lines.filter((l) => l.startsWith('unknown'))).toEqual([]);
  });

  it('a target whose traffic never drains times out with the last value shown', async () => {
    const ctx = makeStepContext({ host: hostOf(stuck, 'stuck'), monitors: { prom: monitor } });
    const params = waitDrainedAction.params.parse({ monitor: 'prom', query: rateQuery, interval: '500ms', timeout: '2500ms' });
    const err = await waitDrainedAction.do(ctx, params).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    const m = /^traffic did not drain within 2\.5s \(\d+ polls, 3 consecutive <= 0 needed\); last: value (\d+(\.\d+)?)$/.exec((err as Error).message);
    expect(m, (err as Error).message).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(20);
    expect(Number(m![1])).toBeLessThan(40);
  });

  it('a label typo (empty result) is never zero: the wait times out showing "no data"', async () => {
    const ctx = makeStepContext({ host: makeHost('typo', '127.0.0.9', { vars: { port: 1 } }), monitors: { prom: monitor } });
    const params = waitDrainedAction.params.parse({ monitor: 'prom', query: rateQuery, interval: '300ms', stableFor: 1, timeout: '1s' });
    await expect(waitDrainedAction.do(ctx, params)).rejects.toThrow(/last: unknown \(no data \(empty result\)\)$/);
    expect(ctx.progressLines.every((l) => l === 'unknown (no data (empty result)) (0/1 polls <= 0)')).toBe(true);
  });

  it('type metrics reads the in-flight gauge from the host itself (no Prometheus involved)', async () => {
    const metrics = metricsMonitor.create(metricsMonitor.options.parse({ url: 'http://{{host.address}}:{{host.vars.port}}/metrics' }), makeEnv()) as Monitor;
    const ctx = makeStepContext({ host: hostOf(stuck, 'stuck'), monitors: { local: metrics } });
    const busyErr = await waitDrainedAction
      .do(ctx, waitDrainedAction.params.parse({ monitor: 'local', query: 'app_inflight', interval: '100ms', timeout: '500ms' }))
      .catch((e: Error) => e);
    expect((busyErr as Error).message).toMatch(/last: value 3$/);
    const ctxIdle = makeStepContext({ host: hostOf(idle, 'idle'), monitors: { local: metrics } });
    await waitDrainedAction.do(ctxIdle, waitDrainedAction.params.parse({ monitor: 'local', query: 'app_inflight{path="/api"}', interval: '100ms' }));
    expect(ctxIdle.progressLines).toEqual(['value 0 (1/3 polls <= 0)', 'value 0 (2/3 polls <= 0)', 'value 0 (3/3 polls <= 0)']);
  });

  // Last: it stops the file's Prometheus.
  it('Prometheus stopped mid-wait: no false zero, the wait times out naming the failure', async () => {
    const ctx = makeStepContext({ host: hostOf(idle, 'idle'), monitors: { prom: monitor } });
    const params = waitDrainedAction.params.parse({ monitor: 'prom', query: rateQuery, interval: '400ms', stableFor: 4, timeout: '4s' });
    const wait = waitDrainedAction.do(ctx, params).catch((e: Error) => e);
    // Stop Prometheus as soon as the first zero reading arrived (the idle host really is at 0).
    await waitFor(() => ctx.progressLines.length > 0, 'the first reading', { timeoutMs: 5000, everyMs: 20 });
    expect(ctx.progressLines[0]).toBe('value 0 (1/4 polls <= 0)');
    await prom.stop();
    const err = await wait;
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(
      /^traffic did not drain within 4\.0s .*; last: unknown \(POST http:\/\/127\.0\.0\.1:\d+\/api\/v1\/query: ECONNREFUSED\)$/,
    );
    // Once Prometheus is gone every poll is unknown with the streak reset; no reading ever completed the streak.
    const firstUnknown = ctx.progressLines.findIndex((l) => l.startsWith('unknown'));
    expect(firstUnknown).toBeGreaterThan(0);
    const after = ctx.progressLines.slice(firstUnknown);
    expect(after.length).toBeGreaterThanOrEqual(4);
    for (const line of after) expect(line).toMatch(/^unknown \(.*\) \(0\/4 polls <= 0\)$/);
    for (const line of ctx.progressLines.slice(0, firstUnknown)) expect(line).toMatch(/^value 0 \([123]\/4 polls <= 0\)$/);
  });
});
