import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, events, requireBuiltCli } from '../helpers/cli.js';
import { hasPrometheus, startPrometheus, type Prometheus } from './helpers/prometheus.js';
import { removeDir, tempDir } from './helpers/process.js';

/**
 * The judge against a real Prometheus 2.x (Debian), end to end through the built CLI: four simulated hosts under
 * steady load expose a request-latency histogram and request/error counters, labelled with their group (a
 * `<host>.group` file the release's relabel step writes: BLUE, then GREEN). Prometheus scrapes them every second.
 * The release turns two hosts GREEN in wave 1 and judges them against the two BLUE ones over a 20 s window:
 * version 2 (no change) passes; version 2-slow (50 % more latency) fails and, under onFailure: rollback-wave,
 * the wave is rolled back (version and group back to 1/BLUE).
 */
const has = hasPrometheus();
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1];

/** One host: 50 requests/s with log-normal latencies (median 40 ms, its own small offset), 0.5 % errors. */
class AppHost {
  private counts = new Array(BUCKETS.length + 1).fill(0);
  private sum = 0;
  private requests = 0;
  private errors = 0;
  private ticker?: NodeJS.Timeout;
  private server?: Server;
  port = 0;
  private seed: number;
  constructor(
    readonly name: string,
    private readonly offset: number,
    private readonly state: () => { version: string; group: string },
  ) {
    this.seed = name.charCodeAt(1) * 7919;
  }
  private rnd(): number {
    this.seed = (this.seed * 16807) % 2147483647;
    return this.seed / 2147483647;
  }
  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const { group } = this.state();
      const lines = ['# TYPE app_request_seconds histogram'];
      let cum = 0;
      BUCKETS.forEach((le, i) => {
        cum += this.counts[i];
        lines.push(`app_request_seconds_bucket{group="${group}",le="${le}"} ${cum}`);
      });
      lines.push(`app_request_seconds_bucket{group="${group}",le="+Inf"} ${this.requests}`);
      lines.push(`app_request_seconds_sum{group="${group}"} ${this.sum}`, `app_request_seconds_count{group="${group}"} ${this.requests}`);
      lines.push('# TYPE app_requests_total counter', `app_requests_total{group="${group}"} ${this.requests}`);
      lines.push('# TYPE app_errors_total counter', `app_errors_total{group="${group}"} ${this.errors}`, '');
      res.writeHead(req.url === '/metrics' ? 200 : 404, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(req.url === '/metrics' ? lines.join('\n') : '');
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
    this.ticker = setInterval(() => {
      const slow = this.state().version === '2-slow' ? 1.5 : 1;
      for (let i = 0; i < 5; i++) {
        const z = Math.sqrt(-2 * Math.log(1 - this.rnd())) * Math.cos(2 * Math.PI * this.rnd());
        const v = 0.04 * this.offset * slow * Math.exp(0.3 * z);
        const b = BUCKETS.findIndex((le) => v <= le);
        this.counts[b < 0 ? BUCKETS.length : b]++;
        this.sum += v;
        this.requests++;
        if (this.rnd() < 0.005) this.errors++;
      }
    }, 100);
    return this;
  }
  async stop(): Promise<void> {
    clearInterval(this.ticker);
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

describe.skipIf(!has)('the judge on a real Prometheus (CLI end to end)', () => {
  let dir: string;
  let prom: Prometheus;
  let fleet = '';
  const names = ['h1', 'h2', 'h3', 'h4'];
  const read = (name: string, what: string, dflt: string) => {
    const f = join(fleet, `${name}.${what}`);
    return existsSync(f) ? readFileSync(f, 'utf8').trim() : dflt;
  };
  const hosts = names.map(
    (name, i) => new AppHost(name, [1, 1.03, 0.98, 1.01][i]!, () => ({ version: read(name, 'version', '1'), group: read(name, 'group', 'BLUE') })),
  );

  requireBuiltCli();

  beforeAll(async () => {
    dir = tempDir('prom-judge');
    fleet = join(dir, 'none');
    for (const h of hosts) await h.start();
    prom = await startPrometheus(dir, [{ job: 'app', targets: hosts.map((h) => `127.0.0.1:${h.port}`) }]);
    await prom.waitForSeries('rate(app_requests_total[3s]) > 0', hosts.length);
  }, 60_000);
  afterAll(async () => {
    await prom?.stop();
    for (const h of hosts) await h.stop();
    if (dir) removeDir(dir);
  });

  function setup(test: string, version: string): string {
    fleet = join(dir, test);
    mkdirSync(fleet);
    for (const n of names) (writeFileSync(join(fleet, `${n}.version`), '1\n'), writeFileSync(join(fleet, `${n}.group`), 'BLUE\n'));
    const f = (n: string) => `${fleet}/{{host.name}}.${n}`;
    const q = (group: string) => `histogram_quantile(0.99, sum by (le, instance) (rate(app_request_seconds_bucket{group="${group}"}[5s])))`;
    const e = (metric: string, group: string) => `sum by (instance) (increase(${metric}{group="${group}"}[5s]))`;
    const playbook = {
      name: `judged-${test}`,
      version,
      hosts: names.map((name) => ({ name, address: '127.0.0.1' })),
      transport: { type: 'local' },
      waves: { size: 2, concurrency: 2, maxFailures: 0, pause: 'none' },
      providers: { prom: { type: 'prometheus', url: prom.url, timeout: '5s' } },
      steps: [
        { name: 'deploy', run: `echo {{version}} > ${f('version')}`, undo: `echo 1 > ${f('version')}` },
        { name: 'relabel', run: `echo GREEN > ${f('group')}`, undo: `echo BLUE > ${f('group')}` },
      ],
      verify: [
        {
          name: 'canary',
          judge: {
            monitor: 'prom',
            window: '20s',
            step: '1s',
            minSamples: 30,
            metrics: [
              { name: 'p99 latency', green: q('GREEN'), blue: q('BLUE'), bad: 'increase', tolerance: '10%', critical: true },
              {
                name: 'error rate',
                kind: 'count',
                green: e('app_errors_total', 'GREEN'),
                greenTotal: e('app_requests_total', 'GREEN'),
                blue: e('app_errors_total', 'BLUE'),
                blueTotal: e('app_requests_total', 'BLUE'),
                bad: 'increase',
              },
            ],
            pass: 90,
            marginal: 70,
          },
        },
      ],
      onFailure: 'rollback-wave',
    };
    const file = join(fleet, 'playbook.yml');
    writeFileSync(file, JSON.stringify(playbook, null, 2));
    return file;
  }
  const state = () => names.map((n) => `${read(n, 'version', '?')}/${read(n, 'group', '?')}`);

  it('GREEN without a change passes the judge (evidence in the JSON events) and the release reaches every host', async () => {
    const file = setup('same', '2');
    const r = await cli(['run', file, '--yes', '--json', '--state-dir', join(fleet, 'state')], { timeoutMs: 90_000 });
    const ev = events(r.stdout);
    expect(r.code, r.stderr + JSON.stringify(ev.filter((x) => x.event.startsWith('verify') || x.event.startsWith('run.'))).slice(0, 4000)).toBe(0);
    const done = ev.filter((x) => x.event === 'verify.done');
    expect(done.map((x) => [x.wave, x.verdict])).toEqual([
      [1, 'pass'],
      [2, 'pass'],
    ]);
    const e1 = done[0]!.evidence;
    expect(e1.score).toBe(100);
    const p99 = e1.metrics.find((m: any) => m.name === 'p99 latency');
    expect(p99.classification).toBe('pass');
    expect(p99.green.series).toBe(2);
    expect(p99.blue.series).toBe(2);
    expect(p99.green.samples).toBeGreaterThanOrEqual(30);
    expect(p99.blue.median).toBeGreaterThan(0.05);
    expect(p99.blue.median).toBeLessThan(0.2);
    const errors = e1.metrics.find((m: any) => m.name === 'error rate');
    expect(errors.green.total).toBeGreaterThan(1000); // 2 hosts × 50 rps × ~20 s, each request counted once
    expect(errors.green.total).toBeLessThan(2600);
    expect(done[1]!.observed).toMatch(/skipped: after the last wave no BLUE series is left/);
    expect(state()).toEqual(['2/GREEN', '2/GREEN', '2/GREEN', '2/GREEN']);
  }, 120_000);

  it('GREEN with injected latency fails the judge and onFailure: rollback-wave rolls the wave back', async () => {
    const file = setup('slow', '2-slow');
    const r = await cli(['run', file, '--yes', '--json', '--state-dir', join(fleet, 'state')], { timeoutMs: 90_000 });
    const ev = events(r.stdout);
    expect(r.code, r.stderr + JSON.stringify(ev.slice(-5)).slice(0, 4000)).toBe(1);
    const failed = ev.find((x) => x.event === 'verify.failed')!;
    expect(failed).toMatchObject({ wave: 1, check: 'canary', verdict: 'fail' });
    const p99 = failed.evidence.metrics.find((m: any) => m.name === 'p99 latency');
    expect(p99.classification).toBe('high');
    expect(p99.shift.relativeLower).toBeGreaterThan(0.1);
    expect(failed.evidence.why).toMatch(/critical metric p99 latency is high/);
    expect(ev.find((x) => x.event === 'rollback.start')).toMatchObject({ waves: [1], hosts: ['h1', 'h2'] });
    expect(ev.at(-1)).toMatchObject({ event: 'run.halted' });
    expect(ev.at(-1)!.reason).toMatch(/verification failed after wave 1: canary: fail: critical metric p99 latency is high.*rolled back \(rollback-wave\)/);
    expect(state()).toEqual(['1/BLUE', '1/BLUE', '1/BLUE', '1/BLUE']);
    // The journal keeps the evidence: status shows it.
    const st = await cli(['status', file, '--state-dir', join(fleet, 'state')]);
    expect(st.stdout).toMatch(/judge canary \(.*\): FAIL: critical metric p99 latency is high/);
    expect(st.stdout).toMatch(/HIGH \(bad\) p99 latency \[critical\]: GREEN median .* GREEN is higher/);
  }, 120_000);
});
